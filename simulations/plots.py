"""The notebooks' plot style: 150 dpi, sized to the site's text column, labels that do not collide.

The site shows a notebook's images at the width of its text column (about 7 inches at 96 px per inch
on a desktop screen). A figure drawn 6.8 inches wide at 150 dpi keeps its labels sharp at that width
and when opened full size. ``tests/test_site.py`` checks every plot of the executed notebooks.

Examples:
    >>> guide_style()
    >>> import matplotlib
    >>> matplotlib.rcParams["figure.dpi"], matplotlib.rcParams["figure.figsize"]
    (150.0, [6.8, 3.0])
"""

from __future__ import annotations

__all__ = ["COLUMN_INCHES", "DPI", "guide_style"]

#: Width of the site's text column, in inches of figure.
COLUMN_INCHES = 6.8
#: Resolution of every plot the notebooks draw.
DPI = 150


def guide_style() -> None:
    """Set matplotlib's defaults for the notebooks (call once, after importing pyplot)."""
    import matplotlib

    matplotlib.rcParams.update({
        "figure.dpi": DPI, "savefig.dpi": DPI, "figure.figsize": [COLUMN_INCHES, 3.0],
        "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "xtick.labelsize": 7.5,
        "ytick.labelsize": 7.5, "legend.fontsize": 7.5,
        "figure.constrained_layout.use": True,  # titles, labels and legends kept inside the figure, apart
    })
