"""Pictures of SAE runs: held-out FVU against training FLOPs, scratch vs transferred initialisation."""

from __future__ import annotations

from matplotlib.figure import Figure


def init_curves_figure(r: dict) -> Figure:
    """The result of :func:`lrt.pipelines.sae_init.compare_init`: the curves, the transferred ones (and the
    refitted, where run) shifted by their charge (small SAE trained for it, solid; small SAE given, dotted), the
    target FVU as a grey line."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    lines = [("scratch", {"sae": 0}, "C0", "scratch")]
    lines.append(("transferred", r["charges"], "C1", "transferred"))
    if "refit" in r["curves"]:
        lines.append(("refit", r["refit_charges"], "C2", "+ refit"))
    for name, charges, color, label in lines:
        h = [x for x in r["curves"][name] if x.get("heldout_fvu") is not None]
        for acc, style, note in (("sae", "-", " (small SAE charged)"),
                                 ("sae, small SAE given", ":", " (small SAE given)")):
            if acc in charges:
                ax.plot([x["flops"] + charges[acc] for x in h], [x["heldout_fvu"] for x in h], style, color=color,
                        label=label + (note if name != "scratch" else ""))
    ax.axhline(r["target_fvu"], color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.tick_params(axis="x", which="both", labelrotation=30)      # log-axis minor labels overlap when level
    ax.set_xlabel("FLOPs (SAE training + transfer cost)")
    ax.set_ylabel("held-out FVU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def features_figure(r: dict) -> Figure:
    """Histograms of each latent's best activation correlation with the native SAE, by kind."""
    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    for kind, color in (("structural", "#1f77b4"), ("semantic", "#d62728"), ("rare", "#999999")):
        v = [x["activation_corr"] for x in r["latents"] if x["kind"] == kind]
        if v:
            ax.hist(v, bins=30, range=(-0.1, 1), alpha=0.6, color=color, label=f"{kind} ({len(v)})")
    ax.set_xlabel("best activation correlation with a native latent")
    ax.set_ylabel("latents")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def features_page(r: dict, style: str) -> str:
    """One HTML page: distributions by kind, then the best- and worst-matching latents with their snippets."""
    import html

    from .plots import _png
    from .sections import fmt, table

    rows = [[k, fmt((v["activation_corr"] or {}).get("n")), fmt((v["activation_corr"] or {}).get("median")),
             fmt((v["activation_corr"] or {}).get("p90")), fmt((v["decoder_cos"] or {}).get("median"))]
            for k, v in r["by_kind"].items()]
    ex = []
    for e in r["examples"]:
        snips = "<br>".join(f"{html.escape(s['before'])}<b>{html.escape(s['token'])}</b>{html.escape(s['after'])} "
                            f"({s['activation']:.2f})" for s in e["snippets"])
        ex.append(f"<tr><td>{e['latent']}</td><td>{e['kind']}</td><td>{e['activation_corr']:.3f}</td>"
                  f"<td>{e['decoder_cos']:.3f}</td><td>{e['eta2_token']:.2f}</td><td>{e['fires']}</td>"
                  f"<td style='text-align:left'>{snips}</td></tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lrt SAE features</title><style>{style}"
            f"</style></head><body><h1>Feature-level transfer on {html.escape(str(r['model']))} layer "
            f"{html.escape(str(r['layer']))}</h1><p>{r['tokens']:,} held-out tokens. Structural: η² of the "
            f"activation by token identity or position ≥ {r['structural_threshold']}; semantic: below; rare: fewer "
            f"than 10 activations.</p>" + _png(features_figure(r)) +
            table(rows, ["kind", "latents", "median best activation corr", "p90", "median best decoder cos"]) +
            "<h2>Best- and worst-matching latents</h2><table><tr><th>latent</th><th>kind</th><th>act. corr</th>"
            "<th>decoder cos</th><th>η² token</th><th>fires</th><th>top activations</th></tr>" + "".join(ex) +
            "</table></body></html>")


def curve_png(history: list[dict], path) -> None:
    """One SAE run's FVU (held-out and training) and, where measured, Δloss against training FLOPs."""
    dl = [h for h in history if h.get("delta_loss") is not None]
    fig = Figure(figsize=(9.5 if dl else 5, 3.2))
    ax = fig.add_subplot(1, 2 if dl else 1, 1)
    rows = [h for h in history if h.get("heldout_fvu") is not None]
    ax.plot([h["flops"] for h in rows], [h["heldout_fvu"] for h in rows], marker="o", ms=3, label="held-out FVU")
    ax.plot([h["flops"] for h in history], [h["train_fvu"] for h in history], alpha=0.6, label="training FVU")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("FVU")
    ax.set_yscale("log")
    ax.legend()
    if dl:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot([h["flops"] for h in dl], [h["delta_loss"] for h in dl], marker="o", ms=3, color="C2")
        ax2.set_xlabel("training FLOPs")
        ax2.set_ylabel("Δloss (nats / token, held out)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def init_page(r: dict, style: str) -> str:
    """One HTML page of ``lrt sae compare-init``: the curves, FLOPs to the target under each accounting, the power
    laws, the zero-shot FVU and the maps' quality."""
    import html

    from .plots import _png
    from .sections import fmt, table

    pct = lambda v: "—" if v is None else f"{v:.0%}"  # noqa: E731
    beta = lambda law: fmt(law.get("beta") if law else None)  # noqa: E731
    refit = "refit" in r["curves"]
    rows = [[name, fmt(r["charges"][name]), fmt(a["scratch_flops"]), fmt(a["transferred_flops"]), pct(a["saving"])] +
            ([fmt(a["refit"]["flops"]), pct(a["refit"]["saving"])] if refit else []) +
            [beta(a["power_law"]["scratch"]), beta(a["power_law"]["transferred"])] +
            ([beta(a["refit"]["power_law"])] if refit else [])
            for name, a in r["accountings"].items()]
    models = r.get("models", {})
    head = (f"{html.escape(str(models.get('source')))} L{models.get('source_layer')} → "
            f"{html.escape(str(models.get('target')))} L{models.get('target_layer')}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lrt SAE initialisation</title><style>{style}"
            f"</style></head><body><h1>The large model's SAE: from scratch vs from the transferred SAE</h1>"
            f"<p>{head}. Target: the scratch run's final held-out FVU {fmt(r['target_fvu'])}. The transferred SAE "
            f"starts at FVU {fmt(r.get('zero_shot_fvu'))} zero-shot; maps held-out R² up "
            f"{fmt((r.get('maps') or {}).get('up_r2'))}, down {fmt((r.get('maps') or {}).get('down_r2'))}. "
            f"Tokens: {html.escape(str(r.get('tokens')))}.</p>" + _png(init_curves_figure(r)) +
            "<h2>FLOPs to the target FVU</h2>" +
            table(rows, ["accounting (charged to the transferred run)", "charge", "scratch", "transferred", "saved"] +
                  (["+ refit", "saved"] if refit else []) + ["β scratch", "β transferred"] +
                  (["β refit"] if refit else [])) +
            "<p class='caption'>FVU(C) = a·C<sup>−β</sup> fitted to each curve (FLOPs C, the charge included). "
            "'sae': the small SAE's training and the maps' statistics are charged; 'small SAE given': only the maps; "
            "'all-in': also every model forward pass. '+ refit': the transferred SAE with its decoder refitted "
            "in closed form on the large model's states and its encoder completed outside the down map's image "
            "(its FLOPs charged too)" +
            (f": {r['decoder_refit']['rows']:,} rows, held-out FVU {fmt(r['decoder_refit']['heldout_fvu_before'])} "
             f"→ {fmt(r['decoder_refit']['heldout_fvu_after'])}" +
             (f", encoder completion γ {r['decoder_refit']['encoder_completion']['gamma']}"
              if r["decoder_refit"].get("encoder_completion") else "") if r.get("decoder_refit") else "") +
            ". Wall time to the target (the large model's forwards included; the maps' and the refit's seconds "
            "charged): " + ", ".join(f"{html.escape(k)} {'—' if v is None else f'{v:.1f} s'}"
                                     for k, v in r.get("wall_seconds_to_target", {}).items()) +
            ".</p></body></html>")
