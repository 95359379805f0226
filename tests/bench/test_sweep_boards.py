"""bench.sweep_boards: the world's collections read back as boards of (item, time) saves."""

from bench import sweep_boards
from engagement_data import synthetic_boards


def test_read_boards_returns_every_save_of_every_board(tmp_path):
    log = synthetic_boards.generate(synthetic_boards.BoardsSettings(items=400, events=5_000), str(tmp_path))
    boards = sweep_boards.read_boards(str(tmp_path))
    assert sum(len(saves) for saves in boards.values()) == log.saves
    assert len(boards) == log.boards
    board, saves = next(iter(boards.items()))
    assert "-b" in board and all(isinstance(item, str) and isinstance(t, int) for item, t in saves)
