"""``graphgrad.nn.utils.rnn``: padding a list of variable-length sequences into one tensor."""

from __future__ import annotations

from ... import creation
from ...tensor import Tensor, cat, stack

__all__ = ["pad_sequence"]


def pad_sequence(
    sequences, batch_first: bool = False, padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:  # fmt: skip
    """Stack sequences of shape (L_i, *) into (L_max, B, *) (``batch_first``: (B, L_max, *)),
    filling with ``padding_value`` after each sequence (``padding_side="left"``: before it).
    Differentiable; the result has the first sequence's dtype, as torch.

    >>> import graphgrad as gg
    >>> pad_sequence([gg.tensor([1.0, 2.0]), gg.tensor([3.0])], batch_first=True).tolist()
    [[1.0, 2.0], [3.0, 0.0]]
    """
    if padding_side not in ("left", "right"):
        raise RuntimeError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    sequences = [sequences[i] for i in range(len(sequences))]  # a list, or a tensor's rows
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    dtype, trailing = sequences[0].dtype, tuple(sequences[0].shape[1:])
    for i, seq in enumerate(sequences):
        if tuple(seq.shape[1:]) != trailing:
            raise RuntimeError(
                f"pad_sequence: sequence {i} has shape {tuple(seq.shape)}, but every sequence "
                f"must have the trailing dims {trailing} of the first"
            )
    longest = max(seq.shape[0] for seq in sequences)
    padded = []
    for seq in sequences:
        seq = seq.to(dtype)
        missing = longest - seq.shape[0]
        if missing:
            fill = creation.full((missing, *trailing), padding_value, dtype=dtype)
            seq = cat([seq, fill] if padding_side == "right" else [fill, seq])
        padded.append(seq)
    return stack(padded, 0 if batch_first else 1)
