# The report's PNG plots (matplotlib, Agg backend), all with a logarithmic x axis except the level
# bars and the throughput against the deployment.
from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_PANELS = 12
COLORS = {"pass@k": "tab:green", "maj@k": "tab:blue", "wmaj@k": "tab:orange", "pass@1": "tab:gray"}


def _grid(n):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def _save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return name


def accuracy_vs_k(an, out_dir):
    pts = an.points[:MAX_PANELS]
    fig, axes = _grid(len(pts))
    cell = an.overall
    ks = np.array(an.ks)
    for ax, pt in zip(axes, pts):
        for s in ("pass@k", "maj@k", "wmaj@k"):
            if s not in an.shown:
                continue
            v = np.array([cell.value((pt.point_id, s, k)) for k in an.ks])
            ax.plot(ks, 100 * v[:, 0], "o-", ms=3, color=COLORS[s], label=s)
            ax.fill_between(ks, 100 * v[:, 1], 100 * v[:, 2], color=COLORS[s], alpha=0.18)
        e, lo, hi = cell.value((pt.point_id, "pass@1", 1))
        ax.axhline(100 * e, color=COLORS["pass@1"], ls=":", label="pass@1")
        ax.set_xscale("log", base=2)
        ax.set_title(pt.label(), fontsize=9)
        ax.set_xlabel("k (samples)")
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _save(fig, out_dir, "accuracy_vs_k.png")


def accuracy_vs_flops(an, out_dir):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cell = an.overall
    any_line = False
    for i, pt in enumerate(an.points):
        fps = an.compute[pt.point_id].flops_per_sample
        if not (fps > 0):
            continue
        x = np.array(an.ks) * fps
        color = f"C{i % 10}"
        for s, ls in (("maj@k", "-"), ("pass@k", ":")):
            if s not in an.shown:
                continue
            v = np.array([cell.value((pt.point_id, s, k)) for k in an.ks])
            ax.plot(x, 100 * v[:, 0], ls, marker="o", ms=3, color=color,
                    label=f"{pt.label()} {s}" if s == "maj@k" or "maj@k" not in an.shown else None)
            any_line = True
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per problem (k × mean FLOPs per sample)")
    ax.set_ylabel("accuracy %  (solid maj@k, dotted pass@k)")
    ax.grid(alpha=0.3)
    if any_line:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no FLOPs recorded", transform=ax.transAxes, ha="center")
    return _save(fig, out_dir, "accuracy_vs_flops.png")


def budget_curve(an, out_dir):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cell = an.overall
    groups = an.budget_groups()
    N = an.N
    styles = ["-", "--", "-.", ":"]
    for gi, (ext, pts) in enumerate(groups):
        x = np.array([an.compute[pt.point_id].mean_thinking for pt in pts])
        order = np.argsort(x, kind="stable")
        x = x[order]
        ls = styles[gi % len(styles)]
        for s, k in (("pass@1", 1), ("maj@k", N), ("wmaj@k", N)):
            if s not in an.shown:
                continue
            v = np.array([cell.value((pt.point_id, s, k)) for pt in pts])[order]
            name = s if s == "pass@1" else s.replace("@k", f"@{N}")
            ax.errorbar(x, 100 * v[:, 0], yerr=[100 * (v[:, 0] - v[:, 1]), 100 * (v[:, 2] - v[:, 0])],
                        fmt="o" + ls, ms=4, capsize=2, color=COLORS[s],
                        label=f"{name}, extend_thinking {ext}")
        if gi == 0 or len(groups) == 1:
            v = np.array([cell.value((pt.point_id, "pass@1", 1)) for pt in pts])[order]
            for xi, yi, pt in zip(x, v[:, 0], [pts[i] for i in order]):
                b = pt.params.get("max_thinking_tokens")
                lab = "off" if pt.params.get("enable_thinking") is False else ("∞" if b is None else str(b))
                ax.annotate(lab, (xi, 100 * yi), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color="dimgray")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("mean thinking tokens per sample (symlog: linear below 10)")
    ax.set_ylabel("accuracy %")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no max_thinking_tokens / extend_thinking grid", transform=ax.transAxes,
                ha="center")
    return _save(fig, out_dir, "budget.png")


def coverage(an, out_dir):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ks = np.array(an.ks, dtype=float)
    kk = np.geomspace(1, max(ks.max(), 2) * 4, 100)
    for i, pt in enumerate(an.points):
        c = np.array([an.overall.est.get((pt.point_id, "pass@k", int(k)), np.nan) for k in ks])
        color = f"C{i % 10}"
        ax.plot(ks, 100 * c, "o", ms=4, color=color, label=pt.label())
        fit = an.coverage[(0, pt.point_id)]
        if fit.ok:
            ax.plot(kk, 100 * fit.predict(kk), "--", color=color, lw=1)
    ax.axhline(100 * an.coverage_target, color="gray", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("coverage pass@k %  (dashed: exp(a·k^-b))")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "coverage.png")


def levels(an, out_dir):
    cells = [c for c in an.cells[1:] if c.problems]
    pts = an.points[:MAX_PANELS]
    fig, axes = _grid(len(pts))
    N = an.N
    strats = [(s, 1 if s == "pass@1" else N) for s in ("pass@1", "pass@k", "maj@k", "wmaj@k")
              if s in an.shown]
    width = 0.8 / max(1, len(strats))
    x = np.arange(len(cells))
    for ax, pt in zip(axes, pts):
        for j, (s, k) in enumerate(strats):
            v = np.array([c.value((pt.point_id, s, k)) for c in cells]).reshape(-1, 3)
            name = s if s == "pass@1" else s.replace("@k", f"@{N}")
            ax.bar(x + (j - (len(strats) - 1) / 2) * width, 100 * v[:, 0], width,
                   yerr=[100 * (v[:, 0] - v[:, 1]), 100 * (v[:, 2] - v[:, 0])], capsize=2,
                   color=COLORS.get(s), label=name)
        ax.set_xticks(x)
        ax.set_xticklabels([c.name.replace("level ", "L") for c in cells])
        ax.set_ylim(0, 105)
        ax.set_title(pt.label(), fontsize=9)
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    return _save(fig, out_dir, "levels.png")


def throughput(an, out_dir):
    """Completion tokens/s (and samples/s) of each deployment with deployment-axis values: x = the
    axis when one axis varies, else one tick per deployment."""
    deps = [d for d in an.deployments() if d["values"] and d["tokens_per_s"] == d["tokens_per_s"]]
    if not deps:
        return None
    axes = [a for a in an.grid_deployment_axes()
            if len({repr(d["values"].get(a)) for d in deps}) > 1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tps = np.array([d["tokens_per_s"] for d in deps])
    sps = np.array([d["samples_per_s"] for d in deps])
    numeric = len(axes) == 1 and all(isinstance(d["values"].get(axes[0]), (int, float))
                                     for d in deps)
    if numeric:
        x = np.array([float(d["values"][axes[0]]) for d in deps])
        order = np.argsort(x, kind="stable")
        x, tps, sps = x[order], tps[order], sps[order]
        ax.set_xlabel(axes[0])
        ax.set_xticks(sorted(set(x.tolist())))
    else:
        x = np.arange(len(deps))
        ax.set_xticks(x)
        ax.set_xticklabels([", ".join(f"{k}={v}" for k, v in d["values"].items()) for d in deps],
                           fontsize=7, rotation=20)
        ax.set_xlabel("deployment")
    ax.plot(x, tps, "o-", color="tab:blue", label="completion tokens/s")
    ax.set_ylabel("completion tokens/s")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(x, sps, "s--", color="tab:orange", label="ok samples/s")
    ax2.set_ylabel("ok samples/s")
    ax2.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    ax.set_title("throughput per deployment (wall time of its finished runs)", fontsize=9)
    return _save(fig, out_dir, "throughput.png")


def all_plots(an, out_dir) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    out = {"accuracy_vs_k": accuracy_vs_k(an, out_dir),
           "accuracy_vs_flops": accuracy_vs_flops(an, out_dir),
           "budget": budget_curve(an, out_dir),
           "coverage": coverage(an, out_dir),
           "levels": levels(an, out_dir)}
    if an.grid_deployment_axes():
        t = throughput(an, out_dir)
        if t:
            out["throughput"] = t
    return out
