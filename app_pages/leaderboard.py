"""Leaderboard: every recorded evaluation run, compared per task, with confidence intervals and samples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.settings import page_settings
from app.widgets import download
from core.eval.datasets import TASKS as EVAL_TASKS
from core.eval.likes import LABELS as LIKES_LABELS
from core.eval.likes import LOWER_IS_BETTER as LIKES_LOWER
from core.eval.likes import METRICS as LIKES_METRICS
from core.eval.likes import TASK as LIKES_TASK
from core.eval.scoring import DEFINITIONS, LABELS, SAMPLE_METRIC, SPEECH_METRICS, TEXT_METRICS, signature_groups
from core.eval.store import ResultsStore, RunRecord, default_store_path

PRIMARY = {"llm": "bleu", "caption": "cider", "ocr": "cer", "asr": "wer", LIKES_TASK: "rmse_log1p"}
LOWER_IS_BETTER = {"wer", "cer", "media_errors", "thin_share", "near_copy_share", "subject_error_share",
                   "invented_number_share", "unsupported_share", "unsupported_per_tweet", *LIKES_LOWER}
TASK_TITLES = {"llm": "Tweets", "caption": "Captions", "ocr": "OCR", "asr": "Speech (ASR)", LIKES_TASK: "Likes"}
LABELS = {**LABELS, **LIKES_LABELS}
LIKES_NOTE = ("`m2t evaluate --task likes`: predicted likes against real ones on held-out rows (--split time: a later "
              "period; brand: unseen accounts). Beside the model, on the same rows: the account's history median "
              "as the prediction, and calling every tweet high. High/low is against the account's history median. "
              "See docs/engagement.md.")
HOW_TO = """\
m2t synth ocr data/generated/ocr          # a small labelled OCR set (or bring your own CSV path,text)
m2t evaluate --task ocr --data data/generated/ocr/ocr.csv
m2t evaluate --task asr --data data/generated/asr/asr.csv --model whisper-tiny.en
"""

OLD_PREPROCESSING = ("recorded before signatures named the preprocessing: placeholders as words, CIDEr-D on a "
                     "regex tokeniser (not COCO's), WER with a 44-word spelling table; rescore to compare")

page_settings()
st.title("Leaderboard")


def run_label(run: RunRecord) -> str:
    adapter = f" + {Path(run.adapter).name}" if run.adapter else ""
    return f"#{run.id} {run.model}{adapter}"


def metrics_of(task: str, runs: list[RunRecord]) -> list[str]:
    known = list(TEXT_METRICS if EVAL_TASKS[task].family == "text" else SPEECH_METRICS) if task in EVAL_TASKS \
        else list(LIKES_METRICS) if task == LIKES_TASK else []
    extra = sorted({m for r in runs for m in r.metrics} - set(known))
    return [m for m in known + extra if any(m in r.metrics for r in runs)]


def runs_table(runs: list[RunRecord], metrics: list[str]) -> pd.DataFrame:
    rows = []
    for run in runs:
        row = {"id": run.id, "run": run_label(run), "model": run.model, "adapter": run.adapter or "",
               "dataset": Path(run.dataset).name if run.dataset else "", "n": run.n}
        for metric in metrics:
            row[metric] = run.metrics.get(metric)
            lo, hi = (run.ci.get(metric) or [None, None])[:2]
            known = lo is not None and hi is not None
            row[f"{LABELS.get(metric, metric)} 95% CI"] = f"[{lo:.2f}, {hi:.2f}]" if known else ""
        row.update({"seconds": run.wall_time_s, "items/s": run.throughput, "hardware": run.hardware or "",
                    "created": run.created_at or "", "warnings": "; ".join(run.warnings),
                    "signature": run.signature or ""})
        rows.append(row)
    frame = pd.DataFrame(rows)
    empty_ci = [c for c in frame.columns if c.endswith("95% CI") and not frame[c].astype(bool).any()]
    return frame.drop(columns=empty_ci)


def warnings_note(runs: list[RunRecord]) -> str:
    """Markdown list of the runs whose set is too small or too short for some metric ("" when none)."""
    lines = [f"- **{run_label(r)}**: {w}" for r in reversed(runs) for w in r.warnings]
    return "Some numbers of these runs mean little:\n" + "\n".join(lines) if lines else ""


def definitions_note(metrics: list[str]) -> str:
    """One line per metric shown: what it is and how its text was prepared (ROUGE-L's variant included)."""
    keys = [m for m in DEFINITIONS if m in metrics or (m == "wer" and "cer" in metrics)]
    return "\n".join(f"- {DEFINITIONS[m]}" for m in keys)


def signatures_note(runs: list[RunRecord]) -> str:
    """Each run's preprocessing signature, metric by metric (runs recorded before signatures: what they had)."""
    lines = []
    for run in reversed(runs):
        groups = signature_groups(run.signature)
        lines.append(f"- **{run_label(run)}**" + ("" if groups else ": no signature recorded"))
        lines.extend(f"    - {labels}: `{sig}`" for labels, sig in groups)
        if "|placeholders:" not in (run.signature or "") and "|norm:" not in (run.signature or ""):
            lines.append(f"    - {OLD_PREPROCESSING}")
    return "\n".join(lines)


def ci_bars(runs: list[RunRecord], metric: str) -> go.Figure:
    shown = [r for r in runs if r.metrics.get(metric) is not None]
    values = [float(r.metrics[metric]) for r in shown]
    lows = [float((r.ci.get(metric) or [v, v])[0]) for r, v in zip(shown, values, strict=True)]
    highs = [float((r.ci.get(metric) or [v, v])[1]) for r, v in zip(shown, values, strict=True)]
    figure = go.Figure(go.Bar(
        x=[run_label(r) for r in shown], y=values, marker_color="#1D9BF0",
        error_y={"type": "data", "symmetric": False, "array": [h - v for h, v in zip(highs, values, strict=True)],
                 "arrayminus": [v - lo for v, lo in zip(values, lows, strict=True)]},
        hovertemplate="%{x}<br>%{y:.3f}<extra></extra>",
    ))
    better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    figure.update_layout(title=f"{LABELS.get(metric, metric)} with 95 % bootstrap CI ({better})",
                         yaxis_title=LABELS.get(metric, metric), height=360, margin={"t": 50, "b": 10})
    return figure


def speed_scatter(frame: pd.DataFrame, metric: str) -> go.Figure | None:
    timed = frame.dropna(subset=["items/s", metric])
    if timed.empty:
        return None
    figure = go.Figure()
    for model, group in timed.groupby("model"):
        figure.add_trace(go.Scatter(
            x=group["items/s"], y=group[metric], mode="markers", name=str(model), text=group["run"],
            marker={"size": 14},
            customdata=group[["dataset", "n", "hardware"]].to_numpy(),
            hovertemplate="%{text}<br>%{x:.2f} items/s<br>%{y:.3f}<br>%{customdata[0]} (n=%{customdata[1]})"
                          "<br>%{customdata[2]}<extra></extra>",
        ))
    figure.update_layout(title=f"Quality vs speed ({LABELS.get(metric, metric)} against items per second)",
                         xaxis_title="items / s (higher is faster)", yaxis_title=LABELS.get(metric, metric),
                         height=360, margin={"t": 50, "b": 10})
    return figure


def samples_view(store: ResultsStore, task: str, runs: list[RunRecord]) -> None:
    st.markdown("#### Samples of one run")
    by_id = {r.id: r for r in runs}
    run_id = st.selectbox("Run", list(reversed(list(by_id))), format_func=lambda i: run_label(by_id[i]),
                          key=f"lb.run.{task}")
    samples = store.samples(int(run_id)) if run_id is not None else []
    if not samples:
        st.info("This run recorded no samples.")
        return
    score_name = SAMPLE_METRIC.get(task, "score")
    lower = score_name in LOWER_IS_BETTER
    frame = pd.DataFrame([{"#": s.idx, score_name: s.score, "prediction": s.prediction, "reference": s.reference,
                           "input": s.input} for s in samples])
    if st.toggle("Worst first", value=True, key=f"lb.worst.{task}"):
        frame = frame.sort_values(score_name, ascending=not lower, na_position="first")
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={score_name: st.column_config.NumberColumn(format="%.2f")})
    pick = st.selectbox("Compare one sample", frame["#"].tolist(), key=f"lb.sample.{task}")
    sample = next(s for s in samples if s.idx == pick)
    left, right = st.columns(2)
    with left:
        score = f"{sample.score:.2f}" if sample.score is not None else "—"
        st.markdown(f"**Prediction** ({LABELS.get(score_name, score_name)} {score})")
        st.code(sample.prediction or "(empty)", language=None, wrap_lines=True)
    with right:
        st.markdown("**Reference**")
        st.code(sample.reference or "(empty)", language=None, wrap_lines=True)
    st.caption(f"Input: {sample.input}")
    download("Download this run's samples (CSV)", frame.to_csv(index=False), f"run_{run_id}_samples.csv",
             "text/csv", key=f"lb.samples_csv.{task}")


def task_tab(store: ResultsStore, task: str, runs: list[RunRecord]) -> None:
    metrics = metrics_of(task, runs)
    if not metrics:
        st.info("These runs recorded no metrics.")
        return
    if task == LIKES_TASK:
        st.caption(LIKES_NOTE)
    primary = PRIMARY.get(task) if PRIMARY.get(task) in metrics else metrics[0]
    metric = st.selectbox("Rank by", metrics, index=metrics.index(primary), format_func=lambda m: LABELS.get(m, m),
                          key=f"lb.metric.{task}")
    frame = runs_table(runs, metrics)
    frame = frame.sort_values(metric, ascending=metric in LOWER_IS_BETTER, na_position="last")
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={m: st.column_config.NumberColumn(LABELS.get(m, m), format="%.3f") for m in metrics})
    if "rougeL" in metrics or "rougeL_coco" in metrics:
        st.caption("ROUGE-L F1 is rouge-score's rougeL (F1, best reference, no stemmer); ROUGE-L (COCO) is "
                   "pycocoevalcap's, the one captioning papers report. BLEU-1..4 are n-gram precisions.")
    warned = warnings_note(runs)
    if warned:
        st.warning(warned, icon=":material/warning:")
    with st.expander("How these numbers are computed (metric definitions and each run's signature)"):
        st.markdown(definitions_note(metrics))
        st.markdown(signatures_note(runs))
    download(f"Download the {TASK_TITLES.get(task, task)} leaderboard (CSV)", frame.to_csv(index=False),
             f"leaderboard_{task}.csv", "text/csv", key=f"lb.csv.{task}")
    bars, scatter = st.columns(2)
    with bars:
        st.plotly_chart(ci_bars(runs, metric), key=f"lb.bars.{task}")
    with scatter:
        figure = speed_scatter(frame, metric)
        if figure is None:
            st.info("No timed runs yet: runs scored from a predictions file have no speed.")
        else:
            st.plotly_chart(figure, key=f"lb.scatter.{task}")
    samples_view(store, task, runs)


def main() -> None:
    path = default_store_path()
    try:
        store = ResultsStore(path)
        runs = store.runs()
    except (sqlite3.Error, OSError) as exc:
        st.error(f"Cannot read the results database {path}: {exc}. Set M2T_RESULTS_DB to a writable file.",
                 icon=":material/error:")
        return
    if not runs:
        st.info(f"No evaluation runs recorded yet in `{path}`. Score a model on a labelled set to create one:")
        st.code(HOW_TO, language="bash")
        st.caption("Tasks: tweet (tweet-dump CSV with `content`), caption, ocr, asr. Every run lands here with "
                   "its per-sample predictions.")
        return
    st.caption(f"{len(runs)} runs recorded in `{path}`. Click a column header to sort.")
    tasks = [t for t in [*EVAL_TASKS, *sorted({r.task for r in runs} - set(EVAL_TASKS))]
             if any(r.task == t for r in runs)]
    for tab, task in zip(st.tabs([TASK_TITLES.get(t, t) for t in tasks]), tasks, strict=True):
        with tab:
            task_tab(store, task, [r for r in runs if r.task == task])


main()


# --------------------------------------------------------------------------- brand history protocol (issue 17)


def brand_protocol_table(runs: list[RunRecord]) -> pd.DataFrame:
    """Tweet runs scored with the challenge's protocol (``--split``/``--history``): each score beside its
    shuffled-reference floor, with and without placeholders, and the voice and grounding figures."""
    from core.eval.brand import FLOOR_METRICS

    rows = []
    for run in runs:
        m = run.metrics
        row = {"run": run_label(run), "n": run.n, "examples": m.get("history_examples")}
        for key in FLOOR_METRICS:
            lo, hi = (run.ci.get(key) or [None, None])[:2]
            ci = f" [{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else ""
            row[LABELS.get(key, key)] = f"{m[key]:.2f}{ci} (floor {m.get(f'floor_{key}', float('nan')):.2f})"
            row[f"{LABELS.get(key, key)}, raw"] = (f"{m.get(f'raw_{key}', float('nan')):.2f} "
                                                   f"(floor {m.get(f'floor_raw_{key}', float('nan')):.2f})")
        for key in ("voice_share", "ref_voice_share", "voice_marker_share", "fact_use_share", "coverage",
                    "unsupported_per_tweet", "unsupported_share", "invented_number_share", "thin_share",
                    "near_copy_share", "subject_error_share", "photo_subject_share", "caption_subject_share",
                    "fallback_share"):
            row[key] = m.get(key)
        rows.append(row)
    return pd.DataFrame(rows)


def brand_protocol_section() -> None:
    try:
        runs = [r for r in ResultsStore(default_store_path()).runs("llm") if "floor_rougeL" in r.metrics]
    except (sqlite3.Error, OSError):
        return
    if not runs:
        return
    st.subheader("Tweets: brand history protocol")
    st.caption("Runs of `m2t evaluate --task llm --split brand|time` (or `--history`): every score with its 95 % "
               "bootstrap CI and its shuffled-reference floor (the same tweets against other rows' references); "
               "'raw' scores the <hyperlink>/<mention> placeholders as the text stands. voice_share: tweets "
               "carrying their brand's signature hashtag, sign-off or emoji (learned from its history); "
               "fact_use_share: tweets using at least half of their own poster's salient words; "
               "unsupported_per_tweet: details (numbers, names, dates, handles, URLs) found in none of the inputs; "
               "voice_marker_share: each marker kind the brand uses (hashtag, sign-off, emoji) carried, per row and "
               "kind; thin_share: fewer than 4 words of its own beyond the media's text; near_copy_share: word "
               "similarity of at least 0.6 to an earlier tweet of the brand; subject_error_share: a classifier label "
               "named that the reference and poster do not back; photo_subject_share / caption_subject_share: photo "
               "rows (a subjects.csv beside the data) whose tweet / caption names what the photo shows. "
               "See docs/brand-voice.md.")
    st.dataframe(brand_protocol_table(runs), hide_index=True, width="stretch")


brand_protocol_section()
