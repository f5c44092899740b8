"""Attention rollout and Chefer et al.'s gradient-weighted relevance: maps read off a vision transformer's own
attention, followed from the class token back to the patches through every block."""

from __future__ import annotations

import torch

from cam_core.lessons.steps import Heatmaps, Source, Step, array, num
from cam_core.registry import AttentionInputs, CamInputs, MethodCard, MethodOutput, Param, register

FUSIONS = ("mean", "max", "min")
ONLY_TRANSFORMERS = frozenset({"attention"})
NO_LAYER = ("It reads every block's attention, so the layer choice does not apply. It needs a vision transformer "
            "(ViT or DeiT) with a class token; the CNNs have no attention and Swin's is windowed. The offline "
            "transformers have random weights, so their maps show the arithmetic, not what a trained network "
            "attends to: real maps need the online weights (Explainer(\"vit_small_patch16_224\") downloads them "
            "where there is internet).")
RANDOM_WEIGHTS = "Offline, the ViT and DeiT have random weights: real maps need the downloaded weights"


def fuse_heads(probabilities: torch.Tensor, fusion: str) -> torch.Tensor:
    """A block's (heads, N, N) attention as one (N, N) matrix: the heads' mean, maximum or minimum."""
    if fusion == "max":
        return probabilities.amax(dim=0)
    if fusion == "min":
        return probabilities.amin(dim=0)
    return probabilities.mean(dim=0)


def discard_lowest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """fused with its lowest ratio of entries set to 0, the class token's attention to itself always kept (as the
    common implementations of rollout do); ratio 0 leaves it as it is."""
    count = int(fused.numel() * ratio)
    if count == 0:
        return fused
    flat = fused.flatten().clone()
    lowest = torch.argsort(flat, stable=True)[:count]  # ties: the earlier entry first
    flat[lowest[lowest != 0]] = 0.0
    return flat.reshape(fused.shape)


def with_residual(fused: torch.Tensor) -> torch.Tensor:
    """(A + I) with each row renormalised to sum to 1: the residual connection carries each token on as it is."""
    mixed = fused + torch.eye(fused.shape[-1], dtype=fused.dtype)
    return mixed / mixed.sum(dim=-1, keepdim=True)


def rollout_blocks(probabilities: tuple[torch.Tensor, ...], fusion: str, discard_ratio: float) -> list[torch.Tensor]:
    """Each block's (N, N) matrix of the rollout, Ã_l: its heads fused, the lowest entries discarded, the residual
    added."""
    return [with_residual(discard_lowest(fuse_heads(block, fusion).double(), discard_ratio)) for block in probabilities]


def traced_back(blocks: list[torch.Tensor]) -> list[torch.Tensor]:
    """The class token's row of the product M_L ⋯ M_1 of the blocks' matrices, built from the last block down:
    e₀ᵀM_L, e₀ᵀM_L M_{L−1}, …, e₀ᵀM_L ⋯ M_1 (how much each token at a block's input flows into the class token at
    the end; the last is the product's class row, at a vector's cost per block)."""
    row = torch.zeros(blocks[-1].shape[-1], dtype=blocks[-1].dtype)
    row[0] = 1.0
    found = []
    for matrix in reversed(blocks):
        row = row @ matrix
        found.append(row)
    return found


def on_grid(row: torch.Tensor, attention: AttentionInputs) -> torch.Tensor:
    """A row over all tokens as the (h, w) patch grid (the class tokens dropped)."""
    return row[attention.prefix :].reshape(attention.grid)


def class_row(matrix: torch.Tensor, attention: AttentionInputs) -> torch.Tensor:
    """The class token's row of an (N, N) matrix over the patch tokens, as the (h, w) patch grid."""
    return on_grid(matrix[0], attention)


def rollout(inputs: CamInputs, fusion: str, discard_ratio: float) -> MethodOutput:
    """The class token's row of the attention rolled out from the first block to the last (it reads no class: kept
    per image and settings)."""
    attention = inputs.attention
    row = inputs.kept(("rollout", fusion, float(discard_ratio)),
                      lambda: traced_back(rollout_blocks(attention.probabilities, fusion, discard_ratio))[-1])
    return MethodOutput(on_grid(row, attention).float())


def chefer_block(probabilities: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Ē = E_h[(∇A ⊙ A)⁺]: a block's attention weighted by the class's gradient, the positive part averaged over
    the heads, (N, N)."""
    return (gradients * probabilities).clamp(min=0).mean(dim=0)


def chefer_blocks(attention: AttentionInputs) -> list[torch.Tensor]:
    """Each block's update of the relevance as a matrix, I + Ē_l: R₀ = I and R ← R + Ē·R make R_L = (I + Ē_L) ⋯
    (I + Ē_1)."""
    found = []
    for probabilities, gradients in zip(attention.probabilities, attention.gradients, strict=True):
        weighted = chefer_block(probabilities, gradients).double()
        found.append(weighted + torch.eye(weighted.shape[-1], dtype=weighted.dtype))
    return found


def chefer(inputs: CamInputs) -> MethodOutput:
    """The class token's row of the gradient-weighted relevance over the patch tokens."""
    attention = inputs.attention
    return MethodOutput(on_grid(traced_back(chefer_blocks(attention))[-1], attention).float())


ROLLOUT = MethodCard(
    id="rollout",
    name="Attention rollout",
    family="Transformer attention",
    needs=frozenset({"attention"}),
    requires=ONLY_TRANSFORMERS,
    cost="fast",
    summary="The class token's attention followed back through every block, the residual connections included.",
    explanation=(
        "A vision transformer mixes its tokens in every block: each token's new value is a weighted average of all "
        "tokens, with the attention probabilities as the weights. Attention rollout asks where the class token's "
        "information came from, all the way back to the patches. In each block the heads' attentions are averaged "
        "into one token × token matrix; the residual connection, which carries every token on unchanged, is added "
        "as the identity, and each row is renormalised to sum to 1. Multiplying these matrices from the first "
        "block to the last gives how much each patch flowed into each token; the class token's row, laid out on "
        "the patch grid, is the map. It never reads the class: the map is the same for every class. " + NO_LAYER
    ),
    formula=r"\tilde A_l = \mathrm{rownorm}\big(\bar A_l + I\big),\ \ \bar A_l = \mathrm{E}_h A_l^h \qquad "
    r"\tilde R = \tilde A_L \cdots \tilde A_2 \tilde A_1 \qquad L = \tilde R_{[\mathrm{CLS}],\,\mathrm{patches}}",
    paper="Abnar & Zuidema, Quantifying Attention Flow in Transformers, ACL 2020",
    definition="Abnar & Zuidema, ACL 2020, §3: Ã = 0.5·W_att + 0.5·I per layer (heads averaged), multiplied "
    "from the first layer up; the class token's row",
    reference="paper",
    strengths=("One forward pass; no gradients", "Follows the residual stream, which raw attention ignores",
               "Every block counts, not only the last"),
    weaknesses=("Not class-specific: one map for every class",
                "Attention says where information flows, not whether it helps the class",
                "Only for ViT/DeiT (a global attention with a class token)", RANDOM_WEIGHTS),
    params=(
        Param("fusion", "mean", "how a block's heads become one matrix: their mean (the paper), maximum or minimum",
              choices=FUSIONS),
        Param("discard_ratio", 0.0, "the share of each block's lowest attentions set to 0 before the residual is "
              "added, as common implementations offer (0: the paper; the class token's attention to itself is "
              "kept)", minimum=0.0, maximum=0.99),
    ),
    class_specific=False,
    alike="attention rollout does not read the class: its map is the same for every class",
    in_default_grid=False,
    signed=False,
)

CHEFER = MethodCard(
    id="chefer",
    name="Gradient-weighted attention (Chefer)",
    family="Transformer attention",
    needs=frozenset({"attention", "attention_gradients"}),
    requires=ONLY_TRANSFORMERS,
    cost="fast",
    summary="Each block's attention weighted by the class's gradient, its positive part accumulated through the "
    "blocks.",
    explanation=(
        "Rollout treats all attention alike; Chefer, Gur and Wolf keep only the attention that helps the class. "
        "In each block the attention probabilities are multiplied element by element with the gradient of the "
        "class score with respect to them; the negative products (attention that works against the class) are "
        "dropped and the heads averaged. Starting from the identity (every token relevant to itself), each "
        "block adds its weighted attention times the relevance so far: R ← R + Ē·R. The class token's row over "
        "the patches is the map. One forward pass serves every class; a class switch costs one backward. "
        + NO_LAYER
    ),
    formula=r"\bar E_l = \mathrm{E}_h\big[(\nabla A_l^h \odot A_l^h)^+\big] \qquad R_0 = I,\ \ "
    r"R_l = R_{l-1} + \bar E_l R_{l-1} \qquad L^c = R_{L\,[\mathrm{CLS}],\,\mathrm{patches}}",
    paper="Chefer, Gur & Wolf, Generic Attention-model Explainability for Interpreting Bi-Modal and "
    "Encoder-Decoder Transformers, ICCV 2021",
    definition="Chefer, Gur & Wolf, ICCV 2021, eq. 5-6 (self-attention rules): Ē = E_h[(∇A ⊙ A)⁺], R ← R + Ē·R, "
    "R₀ = I; the class token's row",
    reference="paper",
    strengths=("Class-specific, from one forward pass (a backward per class)",
               "Keeps only attention that supports the class", "No layer to choose"),
    weaknesses=("The gradient is taken at the attention probabilities only: the values and the MLPs enter only "
                "through it", "Only for ViT/DeiT (a global attention with a class token)", RANDOM_WEIGHTS),
    in_default_grid=False,
    signed=False,
)


def attention_step(source: Source, attention: AttentionInputs) -> Step:
    """The class token's attention to the patches in the first, middle and last blocks (heads averaged)."""
    blocks = len(attention.probabilities)
    heads, tokens, _ = attention.probabilities[0].shape
    shown = sorted({0, blocks // 2, blocks - 1})
    rows = {b: class_row(attention.probabilities[b].mean(dim=0), attention) for b in shown}
    last = attention.probabilities[-1].mean(dim=0)[0]
    text = (
        f"The image goes through {source.analysis.explainer.name} once with every block's attention written out: "
        f"{blocks} blocks of {heads} heads, each a {tokens}×{tokens} matrix of probabilities ({attention.prefix} "
        f"class token{'s' if attention.prefix > 1 else ''} and {attention.grid[0]}×{attention.grid[1]} patches; "
        f"every row sums to 1). In the last block the class token keeps {float(last[0]):.1%} of its attention for "
        f"itself and gives {float(last[attention.prefix:].sum()):.1%} to the patches; its largest share for one "
        f"patch is {num(last[attention.prefix:].max())}. Shown: its row over the patches, heads averaged."
    )
    tiles = tuple((f"block {b}: {num(rows[b].min())} … {num(rows[b].max())}", array(rows[b])) for b in shown)
    return Step("attention", "The attention probabilities", text,
                f"{blocks} blocks × {heads} heads of {tokens}×{tokens} attention", (Heatmaps(tiles),),
                array(torch.stack(attention.probabilities)))


def traced_tiles(rows: list[torch.Tensor], attention: AttentionInputs) -> tuple:
    """The class token's row traced back to the inputs of the last, middle and first blocks (rows from traced_back,
    last block first), on the patch grid."""
    count = len(rows)
    shown = sorted({0, count // 2, count - 1})
    return tuple((f"back to block {count - 1 - i}'s input", array(on_grid(rows[i], attention))) for i in shown)


def rollout_lesson(source: Source) -> list[Step]:
    attention = source.analysis.attention_inputs()
    fusion, ratio = source.params["fusion"], source.params["discard_ratio"]
    rows = traced_back(rollout_blocks(attention.probabilities, fusion, ratio))
    first = fuse_heads(attention.probabilities[0].double(), fusion)
    mixed = with_residual(discard_lowest(first, ratio))
    discarded = f" First the lowest {ratio:.0%} of its entries are set to 0." if ratio else ""
    residual = Step(
        "rollout", "The residual connection, then the product over the blocks",
        f"Each block's heads are fused by their {fusion} into one matrix.{discarded} A block adds its attention's "
        "output to its input, so the identity is added (each token carries itself on) and every row renormalised "
        f"to sum to 1: in block 0 the class token's weight on itself goes from {num(first[0, 0])} to "
        f"{num(mixed[0, 0])}. Multiplying the blocks' matrices, the first on the right, follows the flow of "
        "information: the class token's row of the product, traced back from the last block to the first, says "
        "how much each token at a block's input flows into the class token at the end. At the first block's input "
        f"the patches hold {float(rows[-1][attention.prefix:].sum()):.1%} of it in total.",
        "(fused attention + I), rows renormalised, multiplied from the first block to the last",
        (Heatmaps(traced_tiles(rows, attention)),), array(rows[-1]),
    )
    return [attention_step(source, attention), residual, map_step(source)]


def chefer_lesson(source: Source) -> list[Step]:
    attention = source.analysis.attention_inputs(source.target, gradients=True)
    class_gradients = attention.gradients[-1][:, 0]
    gradients = Step(
        "attention gradients", f"The gradients of “{source.label}” at the attention",
        f"One backward pass from the score of “{source.label}” gives the gradient at every attention probability "
        "of every block (one pass for the image, one backward per class). In the last block only the class "
        "token's row has a gradient (the other tokens' outputs are never read again); "
        f"{float((class_gradients > 0).float().mean()):.0%} of its {class_gradients.numel()} gradients (all heads) "
        f"are positive, from {num(class_gradients.min())} to {num(class_gradients.max())}. A positive gradient: "
        "more of this attention, more of this class.",
        "the gradient of the class score at each attention probability",
        (Heatmaps(tuple((f"block {b}", array(class_row(attention.gradients[b].mean(dim=0), attention)))
                        for b in sorted({0, len(attention.gradients) - 1})), True),),
        array(torch.stack(attention.gradients)),
    )
    rows = traced_back(chefer_blocks(attention))
    last = chefer_block(attention.probabilities[-1].double(), attention.gradients[-1].double())
    zeroed = float(((attention.gradients[-1] * attention.probabilities[-1])[:, 0] < 0).float().mean())
    relevance = Step(
        "relevance", "The relevance through the blocks",
        f"Each block's attention is multiplied by its gradient; the negative products ({zeroed:.0%} of the class "
        "token's row in the last block) are dropped and the heads averaged: Ē = E_h[(∇A ⊙ A)⁺]. Starting from the "
        "identity, every block adds Ē·R to the relevance R. In the last block Ē's class row sums to "
        f"{num(last[0].sum())}; at the end the class token's relevance to the patches sums to "
        f"{num(rows[-1][attention.prefix:].sum())} and to itself is {num(rows[-1][0])}. Since R ← (I + Ē)·R, "
        "R_L = (I + Ē_L) ⋯ (I + Ē_1): shown, its class row traced back from the last block to the first.",
        "R ← R + E_h[(∇A ⊙ A)⁺]·R from R₀ = I",
        (Heatmaps(traced_tiles(rows, attention)),), array(rows[-1]),
    )
    return [attention_step(source, attention), gradients, relevance, map_step(source)]


def map_step(source: Source) -> Step:
    """The class token's row over the patches, on the patch grid: the method's map."""
    raw = source.raw
    return Step("class row", "The class token's row is the map",
                f"The class token's row, without its own entries, laid out on the {raw.shape[0]}×{raw.shape[1]} "
                f"patch grid: from {num(raw.min())} to {num(raw.max())}.",
                "the class token's row over the patch tokens",
                (Heatmaps(((f"{source.card.name}", array(raw)),)),), array(raw))


register(ROLLOUT, rollout, rollout_lesson)
register(CHEFER, chefer, chefer_lesson)
