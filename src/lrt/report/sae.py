"""Pictures of SAE runs: held-out FVU against training FLOPs, scratch vs transferred initialisation."""

from __future__ import annotations

from matplotlib.figure import Figure


def init_curves_figure(r: dict) -> Figure:
    """The result of :func:`lrt.pipelines.sae_init.compare_init`: both curves, the transferred one shifted by
    its charge (small SAE trained for it, solid; small SAE given, dotted), the target FVU as a grey line."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, charge, style, label in (
            ("scratch", 0, "-", "scratch"),
            ("transferred", r["charges"]["sae"], "-", "transferred (small SAE charged)"),
            ("transferred", r["charges"]["sae, small SAE given"], ":", "transferred (small SAE given)")):
        h = [x for x in r["curves"][name] if x.get("heldout_fvu") is not None]
        ax.plot([x["flops"] + charge for x in h], [x["heldout_fvu"] for x in h], style, label=label)
    ax.axhline(r["target_fvu"], color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOPs (SAE training + transfer cost)")
    ax.set_ylabel("held-out FVU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
