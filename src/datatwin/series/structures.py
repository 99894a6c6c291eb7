"""A series structure as data, and its leaderboard label.

    sqrt:ar(19)+seasonal+calendar   transform sqrt, family seasonal, order 19, calendar levels
    log:ar(96) of Δ1                family diff (D = 1), order 96
    mixed:ar(10)+seasonal+phase+mix per-column transforms, phase scales, mixture residuals
    log:ar(67)+seasonal+fourier+exog  a level with Fourier terms of several seasons, calendar
                                    columns drawn from the calendar
    log:ar(62)+seasonal+fourier+mix+long  refit for long horizons: a yearly harmonic, the AR
                                    held to radius 0.999, transforms straightened where the
                                    holdout gains (log → sqrt → none; horizon.py)
    sqrt:ar(19)+seasonal+blocks+regime  long-memory lag blocks, and a second regime of the
                                    mean while the recent change is positive (regime.py)

`SeriesStructure.parse(label)` reads what `label` writes, so a leaderboard row can be handed
back to `fit_select(structures=...)` to fit exactly that candidate again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

#: transforms a label may name: one for every column, or `mixed` (each column its best)
LABEL_TRANSFORMS = ("none", "sqrt", "log", "mixed")
#: modifiers of a base structure, in the order the search adds them
MODIFIERS = (
    "calendar",
    "fourier",
    "exog",
    "blocks",
    "regime",
    "hetero",
    "phase",
    "mix",
    "long",
)
#: modifiers of the conditional mean of a level structure (regime.py)
LEVEL_ONLY = ("calendar", "fourier", "blocks", "regime")

_LABEL = re.compile(
    r"^(?:(?P<t>[a-z]+):)?"
    r"(?:(?P<iid>iid)|ar\((?P<p>\d+)\)(?:(?P<seas>\+seasonal)|\s+of\s+[ΔD](?P<D>\d+))?)"
    r"(?P<mods>(?:\+[a-z]+)*)$"
)


@dataclass(frozen=True)
class SeriesStructure:
    """What a series candidate is: family, AR order, transform, and the modifiers on it."""

    family: str  # iid | ar | seasonal | diff | sdiff
    order: int = 0
    transform: str = "none"  # none | sqrt | log | mixed
    diff_lag: int = 0  # difference lag: 1 (diff), the season (sdiff), 0 (levels)
    calendar: bool = False  # reverting to a mean per phase of the week / season
    fourier: bool = False  # level with Fourier terms of several seasonal periods
    exog: bool = False  # calendar columns scored and drawn from the calendar
    blocks: bool = False  # long memory: means of lag blocks beyond the order
    regime: bool = False  # a second regime of the mean while the recent change is positive
    hetero: bool = False  # a residual scale following the recent residuals' size
    phase: bool = False  # a residual scale per phase of the season
    mix: bool = False  # Gaussian-mixture residuals (on the columns where they help)
    long: bool = False  # refit for long horizons (a yearly harmonic, a tighter radius cap)

    @property
    def label(self) -> str:
        """The leaderboard label (`sqrt:ar(19)+seasonal+calendar`)."""
        name = {
            "iid": "iid",
            "ar": f"ar({self.order})",
            "seasonal": f"ar({self.order})+seasonal",
            "diff": f"ar({self.order}) of Δ{self.diff_lag}",
            "sdiff": f"ar({self.order}) of Δ{self.diff_lag}",
        }[self.family]
        if self.transform != "none":
            name = f"{self.transform}:{name}"
        return name + "".join(f"+{m}" for m in MODIFIERS if getattr(self, m))

    @property
    def levels(self) -> bool:
        """A level structure (iid, ar, seasonal): modelled as deviations from a level."""
        return self.family in ("iid", "ar", "seasonal")

    @classmethod
    def parse(cls, label: str) -> SeriesStructure:
        """The structure a leaderboard label names (InputError when it names none)."""
        m = _LABEL.match(label.strip())
        if m is None:
            raise InputError(
                f"cannot read series structure {label!r}; write it as a leaderboard label, e.g. "
                "iid, ar(3), sqrt:ar(19)+seasonal+calendar, log:ar(5) of Δ1, ar(2)+phase+mix"
            )
        t = m["t"] or "none"
        if t not in LABEL_TRANSFORMS:
            raise InputError(
                f"series structure {label!r}: unknown transform {t!r}; "
                f"choose from {', '.join(LABEL_TRANSFORMS)}"
            )
        mods = [x for x in (m["mods"] or "").split("+") if x]
        bad = [x for x in mods if x not in MODIFIERS]
        if bad or len(set(mods)) != len(mods):
            raise InputError(
                f"series structure {label!r}: modifiers are {', '.join(MODIFIERS)}, each once"
            )
        if m["iid"]:
            family, order, D = "iid", 0, 0
        else:
            order = int(m["p"])
            D = int(m["D"]) if m["D"] else 0
            family = "seasonal" if m["seas"] else ("ar" if not D else "diff" if D == 1 else "sdiff")
        if any(x in mods for x in LEVEL_ONLY) and D:
            raise InputError(
                f"series structure {label!r}: calendar and Fourier levels, lag blocks and regimes "
                "apply to iid, ar and seasonal structures, not to differences"
            )
        return cls(family, order, t, D, *(x in mods for x in MODIFIERS))
