"""Learn sine waves with two stacked LSTMCells and L-BFGS, then predict their future.

PyTorch's time_sequence_prediction example (github.com/pytorch/examples), scaled down to run
in seconds: sine waves of period 2*pi*20 with random phases, a ``Sequence`` model of
``LSTMCell(1, 51)``, ``LSTMCell(51, 51)`` and ``Linear(51, 1)`` in double precision, trained by
``optim.LBFGS(lr=0.8)`` on the MSE of the next value, then run on its own predictions.

    python examples/lstm_sine.py

Prints the training and test loss after each L-BFGS step. ``train(lib=torch)`` runs the very
same code on PyTorch (tests/test_rnn.py compares the two from the same weights).
"""

from __future__ import annotations

import time

import numpy as np

import graphgrad

PERIOD, LENGTH, WAVES, TEST_WAVES = 20, 200, 24, 3  # the original: 20, 1000, 100, 3
STEPS, FUTURE, HIDDEN = 3, 200, 51  # the original: 15 steps, 1000 future values


def sine_waves(waves: int = WAVES, length: int = LENGTH, seed: int = 0) -> np.ndarray:
    """(waves, length) float64: sin((t + random phase) / PERIOD), as generate_sine_wave.py."""
    rng = np.random.RandomState(seed)
    t = np.arange(length) + rng.randint(-4 * PERIOD, 4 * PERIOD, waves).reshape(waves, 1)
    return np.sin(t / 1.0 / PERIOD).astype("float64")


def sequence_model(lib):
    """The example's ``Sequence`` module, in library ``lib`` (graphgrad or torch)."""

    class Sequence(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = lib.nn.LSTMCell(1, HIDDEN)
            self.lstm2 = lib.nn.LSTMCell(HIDDEN, HIDDEN)
            self.linear = lib.nn.Linear(HIDDEN, 1)

        def forward(self, input, future=0):  # noqa: A002 - the original's names
            outputs = []
            h_t, c_t, h_t2, c_t2 = (lib.zeros(input.size(0), HIDDEN, dtype=lib.double)
                                    for _ in range(4))  # fmt: skip
            output = None
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for _ in range(future):  # if we should predict the future
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return lib.cat(outputs, dim=1)

    return Sequence()


def train(lib=graphgrad, state: dict | None = None, steps: int = STEPS, waves: int = WAVES,
          length: int = LENGTH, future: int = FUTURE, verbose: bool = True):
    """Train from ``state`` (a state dict of NumPy arrays) if given, else from ``lib``'s own
    initialisation after ``manual_seed(0)``; return (training losses, test losses) per step."""
    lib.manual_seed(0)
    data = sine_waves(waves, length)
    train, test = data[TEST_WAVES:], data[:TEST_WAVES]
    train_input, train_target = lib.tensor(train[:, :-1]), lib.tensor(train[:, 1:])
    test_input, test_target = lib.tensor(test[:, :-1]), lib.tensor(test[:, 1:])
    seq = sequence_model(lib).double()
    if state is not None:
        seq.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    criterion = lib.nn.MSELoss()
    optimizer = lib.optim.LBFGS(seq.parameters(), lr=0.8)
    train_losses, test_losses = [], []
    for i in range(steps):

        def closure():
            optimizer.zero_grad()
            loss = criterion(seq(train_input), train_target)
            loss.backward()
            return loss

        start = time.perf_counter()
        optimizer.step(closure)
        with lib.no_grad():
            train_losses.append(criterion(seq(train_input), train_target).item())
            prediction = seq(test_input, future=future)
            test_losses.append(criterion(prediction[:, : length - 1], test_target).item())
        if verbose:
            print(f"step {i}: train loss {train_losses[-1]:.3e}, test loss {test_losses[-1]:.3e}"
                  f" ({time.perf_counter() - start:.1f} s; {future} future values predicted)")
    return train_losses, test_losses


if __name__ == "__main__":
    train()
