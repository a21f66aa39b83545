#!/usr/bin/python3
"""quality.py - how good is the model the workers keep? Feeds labelled documents through the
real pipeline (source table -> producer -> workers) in a drifting order, lets the workers'
policy settle, and compares three models on the same documents:

  kept     the model the workers keep (first fit, online updates, automatic refits)
  refit    `topicflow refit --k K --tol 0 --max-iter 200` on the same documents
  sklearn  scikit-learn NMF (nndsvda, cd, 200 iterations) on the same TF-IDF matrix
           (the stored document vectors)

Measures, for each: NMI of each document's dominant topic against its label (scikit-learn's
normalized_mutual_info_score), mean NPMI of each topic's top-10 terms over document
co-occurrence in the same corpus (-1 for a pair that never co-occurs), topic diversity
(distinct terms among all topics' top 10 / 10k), and the relative reconstruction error
||X - H W^T|| / ||X||. Inputs: `sample` (topicflow sample postings: English first, then
Arabic, fields in blocks, label = field), `manpages` (bench/quality_corpus.py: Debian's
manual pages by package, packages in blocks, label = package) and `debian` (Debian 12's
package descriptions sorted by package name, label = section).

Run through bench/quality, which starts the throwaway servers and builds the programs.
"""
import argparse
import base64
import ctypes
import collections
import json
import math
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import NMF
from sklearn.metrics import normalized_mutual_info_score

BIN = os.environ["TOPICFLOW_BIN"]
REPO = os.environ["TOPICFLOW_REPO"]


def psql(sql):
    """Rows of a query as lists of strings (tab-separated, via psql)."""
    out = subprocess.run(["psql", os.environ["TOPICFLOW_PG_URL"], "-AtX", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def scalar(sql):
    rows = psql(sql)
    return rows[0][0] if rows else None


def wait(sql, want, timeout, what):
    end = time.time() + timeout
    while True:
        v = scalar(sql)
        if v == str(want):
            return
        if time.time() > end:
            sys.exit("quality: timed out waiting for %s (%s, want %s)" % (what, v, want))
        time.sleep(0.5)


def drifting_input(name, count, order="drifting", seed=7):
    """(path of a JSONL file in drifting order, labels in file order)."""
    if name == "sample":
        out = subprocess.run([BIN + "/topicflow", "sample", "--count", str(count), "--seed", str(seed)],
                             check=True, capture_output=True, text=True).stdout
        docs = [json.loads(l) for l in out.splitlines()]
        if order == "shuffled":
            random.Random(1).shuffle(docs)
        else:
            # English first, then Arabic; within each, the fields arrive one block after another
            docs.sort(key=lambda d: (d["lang"] != "en", d["field"]))
        labels = [d["field"] for d in docs]
        langs = [d["lang"] for d in docs]
    else:
        path = name
        if name in ("manpages", "debian"):
            path = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                "topicflow", name + ".jsonl")
            if not os.path.exists(path):
                subprocess.run(["/usr/bin/python3", REPO + "/bench/quality_corpus.py", "--source", name,
                                "--out", path], check=True)
        docs = [json.loads(l) for l in open(path, encoding="utf-8")]
        if count and count < len(docs):
            # every (len/count)-th document: the file's order (its drift) over the whole corpus
            docs = [docs[i * len(docs) // count] for i in range(count)]
        labels = [d["label"] for d in docs]
        langs = [d.get("lang", "en") for d in docs]
    f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8")
    for d in docs:
        row = {k: d[k] for k in ("title", "description", "skills") if k in d}
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.close()
    return f.name, labels, langs


def corpus():
    """X (stored TF-IDF weights), binary B, doc ids (the source ids, ascending)."""
    rows = psql("select doc_id, array_to_string(term_ids, ','), array_to_string(weights, ',')"
                " from topicflow.documents where not deleted order by doc_id::bigint")
    ids, indptr, cols, vals = [], [0], [], []
    for doc_id, t, w in rows:
        ids.append(int(doc_id))
        if t:
            cols.extend(int(x) for x in t.split(","))
            vals.extend(float(x) for x in w.split(","))
        indptr.append(len(cols))
    n_terms = int(scalar("select coalesce(max(id), 0) + 1 from topicflow.terms"))
    X = sp.csr_matrix((np.array(vals), np.array(cols, dtype=np.int64), np.array(indptr)),
                      shape=(len(ids), n_terms))
    B = X.copy()
    B.data[:] = 1.0
    return X, B.tocsc(), ids


def kept_model():
    """W (terms x k) of the current model and H (docs x k) as the documents store it."""
    blob = b""
    for _ in range(30):
        blob = base64.b64decode("".join(r[0] for r in psql(
            "select encode(blob, 'base64') from topicflow.model order by version desc limit 1")))
        if len(blob) >= 32:
            break
        time.sleep(1)  # no model yet (the first fit is still running)
    if len(blob) < 32:
        sys.exit("quality: no model after 30 s")
    k, n_terms = struct.unpack_from("<II", blob, 16)
    W = np.frombuffer(blob, dtype="<f8", count=n_terms * k, offset=32).reshape(n_terms, k)
    rows = psql("select array_to_string(topics, ',') from topicflow.documents where not deleted"
                " order by doc_id::bigint")
    H = np.array([[float(x) for x in r[0].split(",")] if r[0] else [0.0] * k for r in rows])
    return W, H


def metrics(X, B, W, H, labels):
    n_docs = X.shape[0]
    W = np.asarray(W)[: X.shape[1]]
    if W.shape[0] < X.shape[1]:
        W = np.vstack([W, np.zeros((X.shape[1] - W.shape[0], W.shape[1]))])
    k = W.shape[1]
    dominant = np.argmax(H, axis=1)
    nmi = normalized_mutual_info_score(labels, dominant)
    df = np.asarray(B.sum(axis=0)).ravel()
    npmis, tops = [], []
    for j in range(k):
        if W[:, j].max() <= 0:
            continue
        top = np.argsort(-W[:, j])[:10]
        tops.extend(top.tolist())
        sub = B[:, top]
        co = (sub.T @ sub).toarray()
        vals = []
        for a in range(len(top)):
            for b in range(a + 1, len(top)):
                pij = co[a, b] / n_docs
                if pij <= 0:
                    vals.append(-1.0)
                    continue
                pi, pj = df[top[a]] / n_docs, df[top[b]] / n_docs
                vals.append(math.log(pij / (pi * pj)) / -math.log(pij) if pij < 1 else 1.0)
        npmis.append(sum(vals) / len(vals))
    diversity = len(set(tops)) / max(1, len(tops))
    # ||X - H W^T||^2 = ||X||^2 - 2 tr(H^T X W) + tr(H^T H W^T W)
    xx = float(X.multiply(X).sum())
    xw = X @ W
    err2 = xx - 2.0 * float(np.sum(H * xw)) + float(np.sum((H.T @ H) * (W.T @ W)))
    return {"nmi": nmi, "npmi": float(np.mean(npmis)) if npmis else float("nan"),
            "diversity": diversity, "relerr": math.sqrt(max(err2, 0.0) / xx) if xx > 0 else 0.0,
            "topics": len(npmis)}


def language_shares(H, langs):
    dominant = np.argmax(H, axis=1)
    shares = {}
    for j in sorted(set(dominant.tolist())):
        members = [langs[i] for i in range(len(langs)) if dominant[i] == j]
        c = collections.Counter(members)
        shares[j] = (len(members), c.get("en", 0) / len(members), c.get("ar", 0) / len(members))
    return shares


def spawn(prog, *args, log):
    """Starts a daemon as its own role, as bench/run describes it in TOPICFLOW_BENCH_<ROLE>_PG_URL
    and TOPICFLOW_BENCH_<ROLE>_PG_PASSWORD_FILE."""
    role = prog.split("-")[-1].upper()
    env = dict(os.environ,
               TOPICFLOW_PG_URL=os.environ["TOPICFLOW_BENCH_%s_PG_URL" % role],
               TOPICFLOW_PG_PASSWORD_FILE=os.environ["TOPICFLOW_BENCH_%s_PG_PASSWORD_FILE" % role])
    return subprocess.Popen([BIN + "/" + prog] + list(args), stdout=log, stderr=log, env=env,
                            preexec_fn=die_with_parent)


def die_with_parent():
    """In the child: SIGTERM when the harness dies, however it dies (PR_SET_PDEATHSIG), so that
    no daemon of a failed run lives on to consume the next run's events."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def main():
    ap = argparse.ArgumentParser(description="topic quality of the kept model vs a refit vs scikit-learn")
    ap.add_argument("--input", default="sample", help="sample, manpages, debian, or a JSONL file with a label key")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--count", type=int, default=5000, help="documents (sample: generated; others: N spread evenly over the file)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--settle", type=float, default=180, help="longest wait for the policy to settle, seconds")
    ap.add_argument("--worker-arg", action="append", default=[], help="extra topicflow-worker flag (repeatable)")
    ap.add_argument("--order", choices=("drifting", "shuffled"), default="drifting",
                    help="sample: English first, fields in blocks (drifting), or shuffled")
    ap.add_argument("--sample-seed", type=int, default=7, help="sample: topicflow sample --seed")
    ap.add_argument("--dump", help="directory to write the settled corpus to (X.npz, meta.json)")
    args = ap.parse_args()

    path, labels, langs = drifting_input(args.input, args.count, args.order, args.sample_seed)
    n = len(labels)
    logdir = os.environ.get("TOPICFLOW_QUALITY_LOGS", tempfile.mkdtemp(prefix="tf-quality-"))
    log = open(os.path.join(logdir, "programs.log"), "w")
    procs = [spawn("topicflow-producer", log=log)]
    for i in range(args.workers):
        procs.append(spawn("topicflow-worker", "--k", str(args.k), "--name", "quality-%d" % i,
                           *args.worker_arg, log=log))
    t0 = time.time()
    subprocess.run([BIN + "/topicflow", "load", path, "--format", "jsonl"], check=True,
                   stdout=subprocess.DEVNULL)
    wait("select count(*) from topicflow.processed_events", n, 600, "every event processed")
    # the documents rows of the last batch commit with its processed_events rows, but a read
    # may start between two workers' commits: wait for the rows themselves
    wait("select count(*) from topicflow.documents where not deleted", n, 60, "every document stored")
    t_burst = time.time() - t0
    # The kept model as the burst ends, before the policy settles (the measurement).
    X, B, ids = corpus()
    W, H = kept_model()
    at_burst = metrics(X, B, W, H, labels)
    # Settled: no pending delta, nothing stale, and the last refit saw every document.
    end = time.time() + args.settle
    while time.time() < end:
        row = psql("select (select count(*) from topicflow.model_deltas),"
                   " (select count(*) from topicflow.documents where not deleted and coalesce(model_version, 0)"
                   "  < (select coalesce(max(epoch), 0) from topicflow.model)),"
                   " (select coalesce(max(fit_docs), 0) from topicflow.model_epochs"
                   "  where epoch = (select max(epoch) from topicflow.model))")[0]
        if row[0] == "0" and row[1] == "0" and int(row[2]) >= n:
            break
        time.sleep(1)
    t_settle = time.time() - t0 - t_burst
    X, B, ids = corpus()
    assert len(ids) == n, "%d documents stored, %d loaded" % (len(ids), n)
    if args.dump:
        # the settled corpus for offline experiments: X, labels, languages, the terms
        terms = psql("select id, term from topicflow.terms order by id")
        forms = psql("select term_id, form, docs from topicflow.term_forms")
        sp.save_npz(os.path.join(args.dump, "X.npz"), X.tocsr())
        rows = psql("select array_to_string(term_ids, ','), array_to_string(counts, ',')"
                    " from topicflow.documents where not deleted order by doc_id::bigint")
        C = sp.lil_matrix(X.shape)
        for r, (t, c) in enumerate(rows):
            for a, b in zip(t.split(",") if t else [], c.split(",") if c else []):
                C[r, int(a)] = int(b)
        sp.save_npz(os.path.join(args.dump, "C.npz"), C.tocsr())
        with open(os.path.join(args.dump, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"labels": labels, "langs": langs, "ids": ids,
                       "terms": {int(r[0]): r[1] for r in terms},
                       "forms": [[int(r[0]), r[1], int(r[2])] for r in forms]}, f, ensure_ascii=False)
    epochs = psql("select reason, fit_docs, k from topicflow.model_epochs order by epoch")
    W, H = kept_model()
    kept = metrics(X, B, W, H, labels)
    kept_shares = language_shares(H, langs)
    # The workers' own measure of the same version (topicflow.model_quality), for status.
    own = None
    end = time.time() + 120
    while time.time() < end and not own:
        rows = psql("select q.version, q.relative_error, q.coherence, q.seconds from topicflow.model_quality q"
                    " where q.version = (select max(version) from topicflow.model)")
        own = rows[0] if rows else None
        time.sleep(1)
    status = subprocess.run([BIN + "/topicflow", "status"], capture_output=True, text=True).stdout

    t1 = time.time()
    subprocess.run([BIN + "/topicflow", "refit", "--k", str(args.k), "--tol", "0", "--max-iter", "200"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_refit = time.time() - t1
    wait("select count(*) from topicflow.documents where not deleted and coalesce(model_version, 0)"
         " < (select coalesce(max(epoch), 0) from topicflow.model)", 0, 300, "the refold")
    W, H = kept_model()
    refit = metrics(X, B, W, H, labels)
    refit_terms = scalar("select kept_terms from topicflow.model_epochs order by epoch desc limit 1")
    # The same refit on the unpruned vocabulary (every term: what refits did before the
    # vocabulary rule), for its time only.
    t1 = time.time()
    subprocess.run([BIN + "/topicflow", "refit", "--k", str(args.k), "--tol", "0", "--max-iter", "200",
                    "--min-df", "1", "--max-df", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_refit_all = time.time() - t1
    all_terms = scalar("select kept_terms from topicflow.model_epochs order by epoch desc limit 1")
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()

    t2 = time.time()
    model = NMF(n_components=args.k, init="nndsvda", solver="cd", max_iter=200, tol=1e-4,
                random_state=0)
    Hs = model.fit_transform(X)
    t_sklearn = time.time() - t2
    skl = metrics(X, B, model.components_.T, Hs, labels)

    print("input: %s, %d documents in %s order, %d labels, k=%d, %d workers"
          % (args.input, n, args.order if args.input == "sample" else "the file's", len(set(labels)),
             args.k, args.workers))
    print("burst through the pipeline %.1f s; policy settled %.1f s after it; epochs: %s"
          % (t_burst, t_settle, ", ".join("%s@%s(k=%s)" % tuple(e) for e in epochs)))
    print()
    print("| model | NMI vs label | mean NPMI top-10 | topic diversity | relative error | seconds |")
    print("|---|---|---|---|---|---|")
    for name, m, secs in (("kept, as the burst ends", at_burst, t_burst),
                          ("kept by the workers, settled", kept, t_burst + t_settle),
                          ("topicflow refit", refit, t_refit), ("scikit-learn NMF", skl, t_sklearn)):
        print("| %s | %.3f | %.3f | %.2f | %.4f | %.1f |" % (name, m["nmi"], m["npmi"], m["diversity"],
                                                          m["relerr"], secs))
    print()
    print("kept / refit: NMI %.3f, NPMI %.3f; refit / sklearn: NMI %.3f, NPMI %.3f"
          % (kept["nmi"] / refit["nmi"] if refit["nmi"] else float("nan"),
             kept["npmi"] / refit["npmi"] if refit["npmi"] else float("nan"),
             refit["nmi"] / skl["nmi"] if skl["nmi"] else float("nan"),
             refit["npmi"] / skl["npmi"] if skl["npmi"] else float("nan")))
    if own:
        print("the workers' own measure of version %s (topicflow status): relative error %.4f,"
              " coherence %.3f, in %.1f s" % (own[0], float(own[1]), float(own[2]), float(own[3])))
    else:
        print("the workers' own measure: none recorded within 120 s")
    print("refit on the model's vocabulary (%s terms) %.1f s; on every term (%s) %.1f s: %.1fx faster"
          % (refit_terms, t_refit, all_terms, t_refit_all, t_refit_all / t_refit))
    if set(langs) != {"en"}:
        print()
        print("languages per topic of the kept model (documents, share en, share ar):")
        print("  " + "; ".join("%d: %d %.0f%%/%.0f%%" % (j, c, 100 * e, 100 * a)
                               for j, (c, e, a) in kept_shares.items()))
        both = [min(e, a) for (c, e, a) in kept_shares.values()]
        print("bilingual: %d of %d topics hold both languages with the minority >= 25 %%;"
              " lowest minority share %.0f %%"
              % (sum(1 for m in both if m >= 0.25), len(both), 100 * min(both) if both else 0))
    print()
    print("topicflow status, settled:")
    print("\n".join("  " + l for l in status.splitlines() if l.startswith(("model", "last_"))))
    print("quality_json=" + json.dumps({"input": args.input, "docs": n, "k": args.k, "kept": kept,
                                        "kept_at_burst": at_burst,
                                        "refit": refit, "sklearn": skl, "burst_s": t_burst,
                                        "settle_s": t_settle, "refit_s": t_refit, "refit_all_terms_s": t_refit_all,
                                        "sklearn_s": t_sklearn}))
    os.unlink(path)


if __name__ == "__main__":
    main()
