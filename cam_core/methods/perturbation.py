"""Perturbation baselines: RISE, occlusion and LIME, which read no layer at all, only what the network says about
perturbed copies of its input (cam_core.inputs.input_perturbations); their maps are at the input's resolution."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cam_core.inputs.input_perturbations import SCORES, InputScores, LimePlan, OcclusionPlan, PerturbationSpec, RisePlan
from cam_core.inputs.masking import BASELINES, baseline_input, masked_inputs
from cam_core.lessons.steps import (
    SHOWN_BARS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    array,
    input_pictures,
    num,
    span,
    top,
)
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register

FAMILY = "Input perturbation"
SHOWN = 4
BASELINE = Param("baseline", "zero", "what perturbed-out pixels become: the zero input (the mean colour) or a blur",
                 choices=tuple(BASELINES), read_by="input")
SEED = Param("seed", 0, "the seed of the random draws (the same seed gives the same samples)", 0, 2**31 - 1,
             read_by="input")


def score_param(default_means: str, logit_means: str) -> Param:
    return Param("score", "probability", f"the class score read: the post-softmax probability ({default_means}) or "
                 f"the logit ({logit_means})", choices=SCORES)


# --------------------------------------------------------------------------------------------------------- RISE

RISE = MethodCard(
    id="rise",
    name="RISE",
    family=FAMILY,
    needs=frozenset({"input_scores"}),
    cost="slow",
    summary="Thousands of random masks on the image; each pixel's value is the class probability averaged over the "
    "masks that keep it.",
    explanation=(
        "RISE treats the network as a black box. It draws a few thousand random coarse grids (7×7 cells, each "
        "kept with probability ½), smooths each into a soft mask the size of the input with a random shift (so "
        "the cells' edges fall anywhere), and multiplies the image with it: where the mask is 0 the input is "
        "zero, the mean colour. Every masked image goes through the network. A pixel's value is the class "
        "probability averaged over the masks, each weighted by how much it kept that pixel, and divided by the "
        "share of pixels a mask keeps: the expected probability when that pixel is visible. No layer or gradient "
        "is read, so it works for any model; it takes one forward pass per mask, and here every class's "
        "probability is kept from the same passes, so switching the class is instant."
    ),
    formula=r"S_c(\lambda) = \frac{1}{N\,p} \sum_{i=1}^{N} P_c(I \odot M_i)\, M_i(\lambda)",
    paper="Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC 2018 "
    "(authors' code: eclique/RISE)",
    definition="Petsiuk et al., BMVC 2018: N binary s×s grids (cells kept with probability p), bilinearly upsampled "
    "to (s+1)·cell, randomly shifted crops; S = Σ P_c(I ⊙ Mᵢ) Mᵢ / (N·p)",
    reference="authors' code",
    strengths=("Black box: no layer, no gradient", "Any architecture", "Smooth, faithful maps"),
    weaknesses=("One forward pass per mask: thousands (slow cold)", "Noisy with few masks",
                "Blurry: resolution limited by the grid"),
    params=(
        Param("samples", 4000, "N, how many random masks (the paper: 4000 for ResNet50)", 1, 20000, read_by="input"),
        Param("cells", 7, "s, the grid's cells per side (the paper: 7)", 1, 56, read_by="input"),
        Param("keep", 0.5, "p, the probability that a cell is kept (the paper: 0.5)", 0.05, 1.0, read_by="input"),
        SEED,
        BASELINE,
    ),
    signed=False,
    in_default_grid=False,
    resolution="input",
    input_spec=lambda params: PerturbationSpec("rise", params["baseline"], int(params["seed"]),
                                               samples=int(params["samples"]), cells=int(params["cells"]),
                                               keep=float(params["keep"])),
)


def rise(inputs: CamInputs) -> MethodOutput:
    """Σᵢ P_c(I ⊙ Mᵢ) Mᵢ / (N·p) over the masks scored so far."""
    scores = inputs.input_scores
    plan: RisePlan = scores.plan
    probabilities = scores.scores(inputs.target)
    raw = plan.weighted_sum(probabilities) / (scores.count * plan.keep)
    return MethodOutput(raw, probabilities, _partial_note(scores, "masks"))


def _partial_note(scores: InputScores, what: str) -> str:
    if scores.complete:
        return ""
    return f"{scores.count} of {scores.plan.count} {what} scored so far"


def rise_lesson(source: Source) -> list[Step]:
    spec = source.card.input_spec(source.params)
    scores = source.analysis.input_scores(spec, progress=source.progress)
    plan: RisePlan = scores.plan
    probabilities = scores.scores(source.target)
    shown = top(probabilities - probabilities.mean(), SHOWN)
    rows = torch.tensor(shown)
    masks = torch.cat([plan.masks(slice(i, i + 1)) for i in shown])
    base = baseline_input(source.analysis.input, spec.baseline)
    masked = masked_inputs(source.analysis.input, base, masks)
    size, cells = plan.size, plan.grids.shape[1]
    kept = float(plan.grids.float().mean())
    terms = probabilities[rows, None, None] * masks[:, 0] / (scores.count * plan.keep)
    whole = float(scores.input_score(source.target))
    return [
        Step("masks", "Random grids become soft masks",
             f"{plan.count} grids of {cells}×{cells} cells are drawn (seed {spec.seed}); each cell is kept with "
             f"probability {plan.keep:g} ({kept:.1%} of the cells drawn are). Each grid is upsampled bilinearly to "
             f"{(cells + 1) * plan.cell}×{(cells + 1) * plan.cell} pixels, cells of {plan.cell}, and a "
             f"{size}×{size} crop is taken at a random shift of 0–{plan.cell - 1} pixels each way, so the cells' "
             "edges fall anywhere. Only the grids and shifts are kept; the masks are rebuilt when needed.",
             f"{plan.count} random {cells}×{cells} grids, upsampled and shifted",
             (Heatmaps(tuple((f"grid {i}", array(plan.grids[i].float())) for i in shown)),
              Heatmaps(tuple((f"mask {i}", array(masks[k, 0])) for k, i in enumerate(shown)))),
             array(masks)),
        Step("masked inputs", "The masked images",
             f"Each mask multiplies the image, I ⊙ M: {BASELINES[spec.baseline]} where the mask is 0. All "
             f"{plan.count} masked images go through the network, once for this image: every class's probability "
             "is kept.", "the image times each mask",
             (input_pictures(source, masked, [f"mask {i}" for i in shown]),), array(masked)),
        Step("scores", "The class probability of each masked image",
             f"The unmasked image gives “{source.label}” a probability of {num(whole)}; the masked images give "
             f"{span(probabilities)}, {num(probabilities.mean())} on average. Masks that keep what the network "
             "needs for the class score high.",
             "the class probability of each masked image",
             (Bars(f"probability of “{source.label}” on the masked images that differ most from the mean", "mask",
                   tuple(top(probabilities - probabilities.mean(), SHOWN_BARS)), "probability",
                   array(probabilities[top(probabilities - probabilities.mean(), SHOWN_BARS)]), whole, "unmasked"),
              Line(f"all {scores.count} probabilities, sorted", "mask (by rank)", "probability",
                   array(probabilities.sort(descending=True).values))),
             array(probabilities)),
        Step("weighted sum", "The masks added up with their probabilities",
             f"Each mask is multiplied by its image's probability and all are added up, then divided by N·p = "
             f"{scores.count}·{plan.keep:g}: S = Σ P(I ⊙ Mᵢ) Mᵢ / (N·p), the expected probability when a pixel is "
             f"kept. The map runs {span(source.raw)}.", "Σ P · M / (N·p)",
             (Heatmaps((*((f"{num(probabilities[i])} × mask {i} / (N·p)", array(terms[k]))
                          for k, i in enumerate(shown)), ("the sum", array(source.raw)))),),
             array(source.raw)),
    ]


# ---------------------------------------------------------------------------------------------------- occlusion

OCCLUSION = MethodCard(
    id="occlusion",
    name="Occlusion",
    family=FAMILY,
    needs=frozenset({"input_scores"}),
    cost="slow",
    summary="A grey square slid over the image; each pixel's value is how far the class score drops when it is "
    "covered.",
    explanation=(
        "Occlusion covers one square of the image at a time with the mean colour (the zero input) and asks the "
        "network again: where covering the square makes the class probability fall, the square held evidence for "
        "the class; where it rises, evidence against it. The square slides by the stride over the whole image, "
        "one forward pass per position. Each pixel's value is the mean drop over the squares that covered it, so "
        "the map is at the input's resolution, blurred by the square's size. Every class's score is kept from "
        "the same passes, so switching the class is instant."
    ),
    formula=r"S_c(\lambda) = \frac{\sum_{w \ni \lambda} \big(y_c(I) - y_c(I_{w \to b})\big)}"
    r"{\big|\{w : w \ni \lambda\}\big|}",
    paper="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
    definition="Zeiler & Fergus, ECCV 2014, §4.2: a grey square slid over the image, the class probability read at "
    "each position",
    differs="each pixel gets the mean drop over the windows that cover it (Captum's Occlusion), not the paper's map "
    "of window positions, so that the map is at the input's resolution",
    reference="paper",
    peers=(Peer("captum", "Occlusion", (("score", "logit"),)),),
    strengths=("Black box and easy to explain", "Negative evidence shows too", "Faithful for the window's size"),
    weaknesses=("One forward pass per window position", "Objects larger than the window barely move the score",
                "Resolution limited by the window and stride"),
    params=(
        Param("window", 48, "the square's side in input pixels", 1, 1024, read_by="input"),
        Param("stride", 16, "the step between squares in input pixels (at most the window)", 1, 1024,
              read_by="input"),
        BASELINE,
        score_param("the paper's", "Captum's Occlusion on the model's output"),
    ),
    in_default_grid=False,
    resolution="input",
    input_spec=lambda params: PerturbationSpec("occlusion", params["baseline"], window=int(params["window"]),
                                               stride=int(params["stride"])),
)


def occlusion_drops(scores: InputScores, target: int, score: str) -> torch.Tensor:
    """Each window's drop of the class score: the unperturbed input's minus the occluded one's."""
    return scores.input_score(target, score) - scores.scores(target, score)


def occlusion(inputs: CamInputs, score: str) -> MethodOutput:
    """Each pixel's mean drop of the class score over the windows covering it."""
    scores = inputs.input_scores
    plan: OcclusionPlan = scores.plan
    drops = occlusion_drops(scores, inputs.target, score)
    return MethodOutput(plan.window_mean(drops), drops, _partial_note(scores, "windows"))


def occlusion_lesson(source: Source) -> list[Step]:
    spec = source.card.input_spec(source.params)
    scores = source.analysis.input_scores(spec, progress=source.progress)
    plan: OcclusionPlan = scores.plan
    score = source.params["score"]
    drops = occlusion_drops(scores, source.target, score)
    down, across = plan.grid
    shown = top(drops, SHOWN)
    masks = torch.cat([plan.masks(slice(i, i + 1)) for i in shown])
    base = baseline_input(source.analysis.input, spec.baseline)
    masked = masked_inputs(source.analysis.input, base, masks)
    whole = float(scores.input_score(source.target, score))
    grid = drops.reshape(down, across)
    best = int(torch.argmax(drops))
    row, column = (int(v) for v in plan.corners[best])
    return [
        Step("masks", "The occluding squares",
             f"A {plan.window}×{plan.window} square is moved over the {plan.size}×{plan.size} input in steps of "
             f"{spec.stride} pixels: {down} × {across} = {plan.count} positions (the last ones cut off by the "
             f"border). Inside the square the input becomes {BASELINES[spec.baseline]}.",
             f"a {plan.window}-pixel square at {plan.count} positions",
             (input_pictures(source, masked, [f"square {i}" for i in shown]),), array(masks)),
        Step("scores", "How far each square makes the score drop",
             f"The whole image gives “{source.label}” a {score} of {num(whole)}. Covering the square at row "
             f"{row}, column {column} drops it the most, by {num(drops[best])}; "
             f"{int((drops < 0).sum())} of the {plan.count} squares raise it instead (evidence against the class). "
             "Shown: each square's drop at its position.",
             f"the class {score} of the whole image minus that of each occluded one",
             (Heatmaps(((f"drop of the {score}, by square position", array(grid)),), True),
              Line(f"all {plan.count} drops, sorted", "square (by rank)", "drop",
                   array(drops.sort(descending=True).values))),
             array(drops)),
        Step("map", "Each pixel's mean drop",
             f"A pixel is covered by up to {-(-plan.window // spec.stride)}² squares; its value is the mean drop over "
             f"them. The map runs {span(source.raw)}.",
             "the mean drop over the squares covering each pixel",
             (Heatmaps((("mean drop", array(source.raw)),), True),), array(source.raw)),
    ]


# --------------------------------------------------------------------------------------------------------- LIME

LIME = MethodCard(
    id="lime",
    name="LIME",
    family=FAMILY,
    needs=frozenset({"input_scores"}),
    cost="slow",
    summary="Superpixels switched on and off at random; a weighted linear fit of the class score says what each "
    "superpixel is worth.",
    explanation=(
        "LIME cuts the image into superpixels (SLIC: patches of similar colour), then makes a thousand random "
        "copies with about half of the superpixels switched off (set to the mean colour) and asks the network for "
        "each. A copy that keeps most of the image counts more: its weight falls with its cosine distance to the "
        "whole image, exp(−d²/σ²). A linear model is fitted to the class score from which superpixels were on "
        "(a weighted ridge regression); each superpixel's coefficient, what switching it on adds to the score, "
        "is its value in the map. The passes are shared by every class; a class switch refits the small linear "
        "model only."
    ),
    formula=r"\pi(z) = \exp\!\big(-d_{\cos}(z, \mathbf{1})^2 / \sigma^2\big) \qquad "
    r"\beta = \arg\min_\beta \sum_{z} \pi(z)\,\big(f_c(z) - \beta_0 - \beta^\top z\big)^2 + \alpha \lVert\beta\rVert^2"
    r" \qquad S_c(\lambda) = \beta_{\mathrm{seg}(\lambda)}",
    paper="Ribeiro, Singh & Guestrin, \"Why Should I Trust You?\": Explaining the Predictions of Any Classifier, "
    "KDD 2016",
    definition="Ribeiro et al., KDD 2016: superpixels as interpretable features, samples weighted by an exponential "
    "kernel on the distance to the image, a weighted linear model fitted to the class probability",
    differs="a ridge fit on every superpixel (as the authors' lime package does by default) instead of the paper's "
    "K-LASSO selection of K of them; switched-off superpixels take the baseline, not their mean colour",
    reference="paper",
    peers=(Peer("captum", "Lime"),),
    strengths=("Black box", "Superpixels follow the image's edges", "A class switch refits only a small model"),
    weaknesses=("One forward pass per sample", "Depends on the segmentation and the kernel width",
                "Random: another seed gives another map"),
    params=(
        Param("samples", 1000, "N, how many random on/off samples (the lime package: 1000)", 2, 20000,
              read_by="input"),
        Param("segments", 100, "about how many SLIC superpixels (scikit-image's n_segments)", 2, 2000,
              read_by="input"),
        Param("compactness", 10.0, "SLIC's compactness: higher gives squarer superpixels", 0.01, 100.0,
              read_by="input"),
        Param("kernel_width", 0.25, "σ of the kernel exp(−d²/σ²) on the cosine distance (the lime package: 0.25)",
              0.01, 10.0),
        Param("alpha", 1.0, "the ridge penalty of the linear fit (the lime package: 1)", 0.0, 1000.0),
        score_param("the paper's", "the model's output before the softmax"),
        SEED,
        BASELINE,
    ),
    in_default_grid=False,
    resolution="input",
    input_spec=lambda params: PerturbationSpec("lime", params["baseline"], int(params["seed"]),
                                               samples=int(params["samples"]), segments=int(params["segments"]),
                                               compactness=float(params["compactness"])),
)


def kernel_weights(samples: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """exp(−d²/σ²) of each on/off sample's cosine distance d to the all-on sample (a sample with nothing on is at
    distance 1)."""
    on = samples.double().sum(dim=1)
    cosine = torch.sqrt(on / samples.shape[1])
    return torch.exp(-((1.0 - cosine) ** 2) / kernel_width**2)


@dataclass(frozen=True)
class RidgeDesign:
    """The class-independent part of LIME's weighted ridge regression on the on/off samples, as scikit-learn's Ridge
    (cholesky solver, its SVD fallback) computes it: the samples' weighted means, the centred samples scaled by
    √weight, and the factor of their penalised Gram matrix (or their SVD where it is singular)."""

    offset: torch.Tensor  # (features,) weighted mean of the samples
    scaled: torch.Tensor  # (samples, features) √w (z − offset)
    root: torch.Tensor  # (samples,) √w
    alpha: float
    cholesky: torch.Tensor | None  # lower factor of scaledᵀ scaled + αI
    svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # U, s, Vᵀ of scaled where cholesky failed

    @property
    def nbytes(self) -> int:
        parts = [self.offset, self.scaled, self.root, *([] if self.cholesky is None else [self.cholesky]),
                 *(self.svd or ())]
        return sum(part.numel() * part.element_size() for part in parts)

    def fit(self, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The coefficients and intercept of the weighted ridge regression of targets (one per sample)."""
        targets = targets.double()
        mean = (self.root**2 @ targets) / (self.root**2).sum()
        right = self.root * (targets - mean)
        if self.cholesky is not None:
            coefficients = torch.cholesky_solve((self.scaled.T @ right)[:, None], self.cholesky)[:, 0]
        else:
            u, s, vt = self.svd
            kept = s > 1e-15
            shrink = torch.where(kept, s / (s**2 + self.alpha), 0.0)
            coefficients = vt.T @ (shrink * (u.T @ right))
        return coefficients, float(mean - self.offset @ coefficients)


def ridge_design(samples: torch.Tensor, weights: torch.Tensor, alpha: float) -> RidgeDesign:
    """The RidgeDesign of the on/off samples (samples × features) with the samples' weights and penalty alpha."""
    z, w = samples.double(), weights.double()
    offset = (w @ z) / w.sum()
    root = torch.sqrt(w)
    scaled = root[:, None] * (z - offset)
    gram = scaled.T @ scaled + alpha * torch.eye(z.shape[1], dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return RidgeDesign(offset, scaled, root, float(alpha), factor)
    return RidgeDesign(offset, scaled, root, float(alpha), None, torch.linalg.svd(scaled, full_matrices=False))


@dataclass(frozen=True)
class KeptDesign:
    """A plan's RidgeDesign as an Analysis keeps it: holding the plan keeps its id, the key, from being reused."""

    plan: LimePlan
    design: RidgeDesign

    @property
    def nbytes(self) -> int:
        return self.design.nbytes


def lime_fit(samples: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, alpha: float
             ) -> tuple[torch.Tensor, float]:
    """The coefficients and intercept of the weighted ridge regression of targets on the on/off samples."""
    return ridge_design(samples, weights, alpha).fit(targets)


def lime(inputs: CamInputs, kernel_width: float, alpha: float, score: str) -> MethodOutput:
    """Each superpixel's coefficient in the weighted ridge fit of the class score, spread over its pixels (the fit's
    class-independent part is kept per image, samples and settings: a class costs one solve)."""
    scores = inputs.input_scores
    plan: LimePlan = scores.plan
    samples = plan.samples[: scores.count]

    def design() -> RidgeDesign:
        return ridge_design(samples, kernel_weights(samples, kernel_width), alpha)

    if scores.complete:
        fitted = inputs.kept(("lime", id(plan), float(kernel_width), float(alpha)),
                             lambda: KeptDesign(plan, design())).design
    else:
        fitted = design()
    coefficients, _ = fitted.fit(scores.scores(inputs.target, score))
    coefficients = coefficients.float()
    return MethodOutput(coefficients[plan.segments.long()], coefficients, _partial_note(scores, "samples"))


def lime_lesson(source: Source) -> list[Step]:
    spec = source.card.input_spec(source.params)
    scores = source.analysis.input_scores(spec, progress=source.progress)
    plan: LimePlan = scores.plan
    score, width = source.params["score"], source.params["kernel_width"]
    values = scores.scores(source.target, score)
    weights = kernel_weights(plan.samples, width)
    coefficients = source.weights
    _, intercept = lime_fit(plan.samples, values, weights, source.params["alpha"])
    shown = [0, *range(1, min(SHOWN, plan.count))]
    base = baseline_input(source.analysis.input, spec.baseline)
    masked = masked_inputs(source.analysis.input, base, torch.cat([plan.masks(slice(i, i + 1)) for i in shown]))
    on = plan.samples.float().sum(dim=1)
    best = int(torch.argmax(coefficients))
    keys = top(coefficients, SHOWN_BARS)
    return [
        Step("superpixels", "The superpixels",
             f"SLIC cuts the {plan.segments.shape[0]}×{plan.segments.shape[1]} input into {plan.features} "
             f"superpixels (asked for about {spec.segments}, compactness {spec.compactness:g}): patches of similar "
             "colour that follow the image's edges. They are LIME's features: each is on (kept) or off.",
             f"{plan.features} SLIC superpixels",
             (Heatmaps((("superpixel labels", array(plan.segments.float())),)),), array(plan.segments.float())),
        Step("masked inputs", "Random samples with superpixels switched off",
             f"{plan.count} samples (seed {spec.seed}) switch each superpixel on or off with even odds; the first "
             f"keeps them all, the image itself. Off means {BASELINES[spec.baseline]}. The samples keep "
             f"{span(on)} superpixels. Each goes through the network once for this image, every class's score "
             "kept.", "random on/off choices of the superpixels",
             (input_pictures(source, masked, [f"sample {i}" for i in shown]),), array(plan.samples.float())),
        Step("sample weights", "Closer samples count more",
             f"A sample's weight is exp(−d²/σ²) with d its cosine distance to the all-on sample and σ = {width:g}: "
             f"the weights run {span(weights)}. The class {score} of “{source.label}” runs {span(values)} over "
             "the samples.", f"exp(−d²/σ²), σ = {width:g}",
             (Line("sample weights, sorted", "sample (by rank)", "weight", array(weights.sort(descending=True).values)),
              Line(f"class {score} of the samples, sorted", "sample (by rank)", score,
                   array(values.sort(descending=True).values))),
             array(weights)),
        Step("regression", "A weighted linear fit",
             f"A ridge regression (α = {source.params['alpha']:g}) fits the {score} as {num(intercept)} plus a "
             f"coefficient per superpixel that is on, each sample counted by its weight. Superpixel {best} adds "
             f"the most, {num(coefficients[best])}; {int((coefficients < 0).sum())} of {plan.features} "
             "coefficients are negative (evidence against the class).",
             "weighted ridge regression of the score on the on/off choices",
             (Bars("the largest coefficients (by size)", "superpixel", tuple(keys), "coefficient",
                   array(coefficients[keys])),), array(coefficients)),
        Step("map", "Each superpixel takes its coefficient",
             f"Every pixel takes the coefficient of its superpixel: the map runs {span(source.raw)}.",
             "the coefficients painted on the superpixels",
             (Heatmaps((("coefficients on the superpixels", array(source.raw)),), True),), array(source.raw)),
    ]


register(RISE, rise, rise_lesson)
register(OCCLUSION, occlusion, occlusion_lesson)
register(LIME, lime, lime_lesson)
