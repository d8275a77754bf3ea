"""``graphgrad.device`` and ``graphgrad.cuda``: PyTorch code names devices; graphgrad has one, the
CPU. Other devices can be named (so that code runs unchanged) but moving a tensor there raises."""

from __future__ import annotations


class device:  # noqa: N801 - torch's name
    """A device name, ``device("cpu")`` or ``device("cuda:0")``.

    >>> import graphgrad as gg
    >>> gg.device("cpu") == "cpu", gg.tensor([1.0]).device
    (True, device(type='cpu'))
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        name, _, number = str(type).partition(":")
        self.type = name
        self.index = int(number) if number else index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


class cuda:  # noqa: N801 - mirrors the torch.cuda module's queries
    """``graphgrad.cuda.is_available()`` is False: graphgrad computes on the CPU with NumPy."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0
