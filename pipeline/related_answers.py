"""How `pin2vec related` shows its answers: JSON for programs, ranked lists with titles for people."""

from __future__ import annotations

import json

# {query item: (the source that answered, [(related item, score)]) or None when no source knows it}
Answers = dict[str, "tuple[str, list[tuple[str, float]]] | None"]


def answers_json(answers: Answers) -> str:
    """{id: [{item, score, source}] or null}: each related item names the source that answered its query."""
    return json.dumps(
        {
            item: None
            if answer is None
            else [{"item": r, "score": float(s), "source": answer[0]} for r, s in answer[1]]
            for item, answer in answers.items()
        }
    )


def answers_text(answers: Answers, sources: list[str], version_dir: str, titles: dict[str, str]) -> str:
    """A header naming the version and the fallback order, then each item's ranked list, titles by ids."""
    named = lambda i: f"{i} {titles[i]}" if i in titles else i  # noqa: E731
    fallbacks = f"; then {', '.join(sources[1:])} for items it lacks" if len(sources) > 1 else ""
    lines = [f"({sources[0]}: {version_dir}{fallbacks})"]
    for item, answer in answers.items():
        if answer is None:
            where = "not engaged in the window" if "coldstart" in sources else "not in the pushed vocabulary"
            lines.append(f"\n{named(item)}: unknown item ({where})")
            continue
        source, related = answer
        fallback = " (a fallback: the window's most engaged items)" if source == "popular" else ""
        lines.append(f"\nRelated to {named(item)} (from {source}{fallback}):")
        lines += [
            f"  {rank:2d}. {score:.3f}  {named(other)}" for rank, (other, score) in enumerate(related, 1)
        ]
    return "\n".join(lines)


def k_over_cap_warning(source: str, cap: int, k: int) -> str:
    return (
        f"--k {k} asks more than the {source} source holds: its table keeps the best {cap} candidates per "
        f"item (fixed when it was pushed), so answers have at most {cap} items; the pin2vec sources answer "
        "any k up to the vocabulary"
    )
