"""`pin2vec data`: fetch MovieLens-100K, generate synthetic logs (with or without boards), or turn a text into
sessions. Its own module so that `pipeline/cli.py` stays the parser and dispatcher of the commands."""

from __future__ import annotations

import sys


def add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="fetch a data set into a local cache, or generate a synthetic one")
    data.add_argument(
        "dataset", choices=["movielens-100k", "synthetic", "text", "kjv"], help="what to fetch or generate"
    )
    data.add_argument(
        "--out",
        default=None,
        help="cache/output directory (default: work/data/ml-100k, work/data/synthetic, work/data/text, "
        "work/data/kjv)",
    )
    _add_synthetic_flags(data)
    _add_text_flags(data)


def _add_text_flags(data) -> None:
    text = data.add_argument_group(
        "text, kjv (words are items, one sentence or verse a session: engagement_data/text_sessions.py)"
    )
    text.add_argument(
        "--source",
        default=None,
        help="text: the UTF-8 text file (required); kjv: the Debian data file (default: /usr/lib/bible.data, "
        "from apt-get install bible-kjv-text)",
    )
    text.add_argument(
        "--format",
        default=None,
        choices=["plain", "kjv"],
        help="text: plain (sentences; default) or kjv (one '<ref> <text>' verse per line)",
    )
    text.add_argument("--min-words", type=int, default=2, help="drop shorter sessions (default: %(default)s)")


def _add_synthetic_flags(data) -> None:
    synthetic = data.add_argument_group("synthetic (seeded, streamed, sharded: engagement_data/synthetic.py)")
    synthetic.add_argument("--items", type=int, default=100_000, help="vocabulary (default: %(default)s)")
    synthetic.add_argument("--events", type=int, default=1_000_000, help="events (default: %(default)s)")
    synthetic.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed writes the same log"
    )
    synthetic.add_argument("--shards", type=int, default=4, help="event files, sharded by user")
    synthetic.add_argument(
        "--file-format",
        default=None,
        choices=["csv", "parquet"],
        help="format of the event files (default: csv; with --days: parquet)",
    )
    synthetic.add_argument("--topic-size", type=int, default=10, help="items per topic (planted related + 1)")
    # None: the generator's own default (the boards world has a steeper Zipf and less drift and noise).
    synthetic.add_argument("--zipf-exponent", type=float, default=None, help="default 0.8; --boards: 1.2")
    synthetic.add_argument(
        "--drift", type=float, default=None, help="per-event chance to change topic (0.1; --boards: 0.05)"
    )
    synthetic.add_argument(
        "--noise",
        type=float,
        default=None,
        help="per-event chance of an off-topic item (0.05; --boards: 0.02)",
    )
    daily = data.add_argument_group(
        "synthetic --days (one partition per day, a world that moves: engagement_data/synthetic_daily.py)"
    )
    daily.add_argument(
        "--days",
        type=int,
        default=None,
        help="write <out>/YYYY-MM-DD/events.parquet per day (--events is then per day, --items on the first "
        "day); rerun with a larger --days to add days (default --out: work/data/synthetic-daily)",
    )
    daily.add_argument("--new-items-per-day", type=int, default=None, help="default: 1%% of --items")
    daily.add_argument(
        "--popularity-drift", type=float, default=0.3, help="std of each item's daily log-popularity step"
    )
    daily.add_argument(
        "--trending-share", type=float, default=0.1, help="share of topics that rise and fade (default 0.1)"
    )
    daily.add_argument("--start-date", default="2024-01-01", help="the first day, YYYY-MM-DD (UTC)")
    boards = data.add_argument_group(
        "synthetic --boards (sessions and boards: engagement_data/synthetic_boards.py)"
    )
    boards.add_argument(
        "--boards",
        action="store_true",
        help="also write boards (collections/) over fine and coarse topics (default --out: "
        "work/data/synthetic-boards)",
    )
    boards.add_argument("--users", type=int, default=None, help="board owners (default: one per 750 events)")
    boards.add_argument("--boards-per-user", type=int, default=8, help="boards each owner keeps")
    boards.add_argument("--saves-per-board", type=int, default=12, help="mean saves per board")
    boards.add_argument("--fine-per-coarse", type=int, default=8, help="fine topics per coarse topic")
    boards.add_argument("--bridge-prob", type=float, default=0.1, help="per-event chance of a bridge topic")
    boards.add_argument("--segmentation", type=int, default=2, help="boards per fine interest of a user")
    boards.add_argument(
        "--coarse-board-share", type=float, default=0.6, help="boards spanning a coarse topic"
    )
    boards.add_argument("--board-drift-share", type=float, default=0.3, help="boards changing topic halfway")
    boards.add_argument("--save-zipf-exponent", type=float, default=0.5, help="save popularity (flatter)")


def cmd_data(args) -> int:
    if args.dataset == "synthetic":
        return cmd_data_synthetic(args)
    if args.dataset in ("text", "kjv"):
        return cmd_data_text(args)
    from engagement_data.movielens_fetch import fetch_movielens_100k

    files = fetch_movielens_100k(args.out or "work/data/ml-100k")
    print(f"MovieLens-100K ready ({files.source}):\n  ratings: {files.ratings}\n  titles:  {files.titles}")
    return 0


def cmd_data_text(args) -> int:
    from engagement_data.text_sessions import KJV_DATA_FILE, TextSettings, write_text_sessions

    if args.dataset == "kjv":
        source, fmt, out = args.source or KJV_DATA_FILE, args.format or "kjv", args.out or "work/data/kjv"
    elif not args.source:
        print("pin2vec data text: --source FILE is required", file=sys.stderr)
        return 2
    else:
        source, fmt, out = args.source, args.format or "plain", args.out or "work/data/text"
    written = write_text_sessions(source, out, TextSettings(format=fmt, min_words=args.min_words))
    print(
        f"text sessions ({fmt}): {written.sessions:,} sessions of {written.words:,} words, "
        f"{written.vocabulary:,} distinct words from {source} ({written.dropped_short:,} under "
        f"{args.min_words} words dropped)\n  sessions: {written.sessions_path} (pin2vec run --sessions)\n"
        f"  manifest: {written.manifest_path}"
    )
    return 0


def cmd_data_synthetic(args) -> int:
    import time

    from engagement_data.synthetic import SyntheticSettings, generate

    knobs = {k: getattr(args, k) for k in ("zipf_exponent", "drift", "noise") if getattr(args, k) is not None}
    if args.days is not None:
        if args.boards:
            print("pin2vec data synthetic: --days and --boards cannot be combined", file=sys.stderr)
            return 2
        return cmd_data_synthetic_daily(args, knobs)
    if args.boards:
        return cmd_data_synthetic_boards(args, knobs)
    settings = SyntheticSettings(
        items=args.items,
        events=args.events,
        seed=args.seed,
        shards=args.shards,
        file_format=args.file_format or "csv",
        topic_size=args.topic_size,
        **knobs,
    )
    started = time.monotonic()
    log = generate(settings, args.out or "work/data/synthetic")
    print(
        f"synthetic log: {log.events:,} events, {log.sessions:,} sessions, {log.users:,} users, "
        f"{settings.items:,} items in {time.monotonic() - started:.1f} s\n"
        f"  events:       {log.events_dir} ({len(log.shards)} shards; columns user_id,item_id,timestamp)\n"
        f"  ground truth: {log.ground_truth}\n  manifest:     {log.manifest}"
    )
    return 0


def cmd_data_synthetic_boards(args, knobs: dict) -> int:
    import time

    from engagement_data.synthetic_boards import BoardsSettings, generate

    settings = BoardsSettings(
        items=args.items,
        events=args.events,
        seed=args.seed,
        shards=args.shards,
        file_format=args.file_format or "csv",
        fine_topic_size=args.topic_size,
        fine_per_coarse=args.fine_per_coarse,
        bridge_prob=args.bridge_prob,
        users=args.users,
        boards_per_user=args.boards_per_user,
        saves_per_board=args.saves_per_board,
        segmentation=args.segmentation,
        coarse_board_share=args.coarse_board_share,
        board_drift_share=args.board_drift_share,
        save_zipf_exponent=args.save_zipf_exponent,
        **knobs,
    )
    started = time.monotonic()
    log = generate(settings, args.out or "work/data/synthetic-boards")
    print(
        f"synthetic sessions and boards: {log.events:,} events, {log.sessions:,} sessions, "
        f"{log.saves:,} saves to {log.boards:,} boards of {log.owners:,} users, {settings.items:,} items "
        f"in {time.monotonic() - started:.1f} s\n"
        f"  events:       {log.events_dir} (columns user_id,item_id,timestamp)\n"
        f"  collections:  {log.collections_dir} (columns board_id,item_id,timestamp)\n"
        f"  ground truth: {log.ground_truth}\n  items:        {log.items}\n  manifest:     {log.manifest}"
    )
    return 0


def cmd_data_synthetic_daily(args, knobs: dict) -> int:
    import time

    from engagement_data.synthetic_daily import DailySettings, generate_daily

    settings = DailySettings(
        days=args.days,
        items=args.items,
        events_per_day=args.events,
        new_items_per_day=args.new_items_per_day,
        seed=args.seed,
        topic_size=args.topic_size,
        popularity_drift=args.popularity_drift,
        trending_share=args.trending_share,
        start_date=args.start_date,
        file_format=args.file_format or "parquet",
        **knobs,
    )
    started = time.monotonic()
    log = generate_daily(settings, args.out or "work/data/synthetic-daily")
    kept = len(log.day_files) - len(log.written)
    last_day = settings.date(settings.days - 1)
    print(
        f"synthetic daily log: {len(log.written)} day(s) written ({kept} already there), "
        f"{settings.events_per_day:,} events a day, {settings.items:,} items on the first day + "
        f"{settings.new_items:,} new a day, in {time.monotonic() - started:.1f} s\n"
        f"  days:         {log.out_dir}/YYYY-MM-DD/ ({settings.date(0)} .. {last_day})\n"
        f"  ground truth: {log.out_dir}/truth/YYYY-MM-DD/ (planted related items and new items of each day)\n"
        f"  manifest:     {log.manifest}\n"
        f"  train on the latest 7 days: pin2vec run --events '{log.pattern}' --days 7"
    )
    return 0
