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


class NoCudaError(AssertionError, RuntimeError):
    """A ``graphgrad.cuda`` query that needs a GPU. torch without CUDA raises AssertionError
    ("Torch not compiled with CUDA enabled"), graphgrad's other device errors are RuntimeErrors
    (``tensor.to("cuda")``): this is both, so either ``except`` catches it."""

    def __init__(self, function: str) -> None:
        super().__init__(f"cuda.{function}: graphgrad runs on the CPU only; CUDA is not "
                         "available (torch without CUDA: Torch not compiled with CUDA enabled)")


class cuda:  # noqa: N801 - mirrors the torch.cuda module's functions
    """``graphgrad.cuda`` answers ``torch.cuda``'s queries as torch does on a machine without
    CUDA: ``is_available()`` is False and ``device_count()`` 0; the calls that torch makes safe
    without CUDA do nothing here either (``manual_seed``: graphgrad draws every random number
    from ``graphgrad.manual_seed``'s CPU generator, there is no GPU generator to seed;
    ``empty_cache``; the memory counters are 0); the ones that need a GPU
    (``current_device``, ``synchronize``...) raise :class:`NoCudaError`.

    >>> import graphgrad as gg
    >>> gg.cuda.is_available(), gg.cuda.device_count(), gg.cuda.manual_seed_all(0)
    (False, 0, None)
    """

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def is_initialized() -> bool:
        return False

    @staticmethod
    def manual_seed(seed) -> None:
        int(seed)  # torch checks the seed even when it has no GPU to give it to

    @staticmethod
    def manual_seed_all(seed) -> None:
        int(seed)

    @staticmethod
    def seed() -> None:
        """Nothing to seed: see the class's docstring."""

    @staticmethod
    def seed_all() -> None:
        """Nothing to seed: see the class's docstring."""

    @staticmethod
    def empty_cache() -> None:
        """graphgrad's arrays are NumPy's, freed when the last reference goes: no cache."""

    @staticmethod
    def memory_allocated(device=None) -> int:
        return 0

    @staticmethod
    def max_memory_allocated(device=None) -> int:
        return 0

    @staticmethod
    def memory_reserved(device=None) -> int:
        return 0

    @staticmethod
    def max_memory_reserved(device=None) -> int:
        return 0

    @staticmethod
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return False

    @staticmethod
    def get_arch_list() -> list[str]:
        return []

    @staticmethod
    def init() -> None:
        raise NoCudaError("init")

    @staticmethod
    def initial_seed() -> int:
        raise NoCudaError("initial_seed")

    @staticmethod
    def current_device() -> int:
        raise NoCudaError("current_device")

    @staticmethod
    def set_device(device) -> None:
        raise NoCudaError("set_device")

    @staticmethod
    def get_device_name(device=None) -> str:
        raise NoCudaError("get_device_name")

    @staticmethod
    def get_device_properties(device=None):
        raise NoCudaError("get_device_properties")

    @staticmethod
    def get_device_capability(device=None) -> tuple[int, int]:
        raise NoCudaError("get_device_capability")

    @staticmethod
    def synchronize(device=None) -> None:
        raise NoCudaError("synchronize")

    @staticmethod
    def get_rng_state(device="cuda"):
        raise NoCudaError("get_rng_state")
