"""Score-CAM and Ablation-CAM: channel weights from what the network says about masked or ablated inputs."""

from __future__ import annotations

import torch

from cam_core.inputs.mask_scores import AblationScores, MaskScores, MaskSpec, sampled_masks
from cam_core.inputs.masking import (
    BASELINES,
    INTEGRATIONS,
    baseline_input,
    mask_scales,
    masked_inputs,
    normalized_masks,
)
from cam_core.lessons.steps import (
    FOCUS,
    SHOWN_BARS,
    SHOWN_CHANNELS,
    Bars,
    Heatmaps,
    Line,
    Source,
    Step,
    activations_step,
    array,
    focus,
    input_pictures,
    num,
    signed,
    top,
    weight_bars,
    weighted_sum_step,
    weights_text,
)
from cam_core.methods.common import weighted_sum
from cam_core.registry import CamInputs, MethodCard, MethodOutput, Param, Peer, register

BASELINE = Param("baseline", "zero", "what masked-out pixels become: the zero input (the mean colour) or a blur",
                 choices=tuple(BASELINES), read_by="input")
SCORE = Param("score", "probability", "the class score compared: post-softmax probability or the logit",
              choices=("probability", "logit"))


WEIGHTINGS = {
    "probability": "the masked input's post-softmax probability of the class (the authors' code)",
    "logit softmax": "a softmax over channels of the masked inputs' logits of the class (pytorch-grad-cam)",
    "gain softmax": "a softmax over channels of the probability gains over the baseline (the paper's equations, "
    "taken literally: nearly uniform weights, see Learn)",
    "gain": "the probability gains over the baseline, no softmax",
}
WEIGHTS = Param("weights", "probability", "what a channel's weight is: "
                + "; ".join(f"{name}: {meaning}" for name, meaning in WEIGHTINGS.items()), choices=tuple(WEIGHTINGS))
ALIGN_CORNERS = Param("align_corners", False, "upsample masks with aligned corners, as pytorch-grad-cam does (shifts "
                      "evidence by up to half a cell); off puts each cell over the patch it covers", read_by="input")
TOP_CHANNELS = Param("top_channels", 1.0, "the fraction of channels scored: those whose activations vary most over "
                     "the positions (tf-keras-vis's max_N as a fraction of the channels); the others weigh 0 and are "
                     "not run. 1 scores every channel", minimum=0.01, maximum=1.0, read_by="input")


def score_gains(scores: MaskScores, target: int, score: str) -> torch.Tensor:
    """Each mask's score for target minus the baseline's: post-softmax probabilities, or logits for "logit"."""
    if score == "logit":
        return scores.logits[:, target] - scores.baseline_logits[target]
    return scores.probabilities[:, target] - scores.baseline_probabilities[target]


SCORECAM = MethodCard(
    id="scorecam",
    name="Score-CAM",
    family="Channel weighting",
    needs=frozenset({"mask_scores"}),
    cost="slow",
    summary="Each channel, used as a mask on the image, is scored by the network itself: no gradients.",
    explanation=(
        "Score-CAM asks the network directly how much each channel matters. Every channel's map is upsampled "
        "to the input size, scaled to [0, 1] and multiplied with the image, so only the regions that channel "
        "fires on remain; the masked image goes through the whole network. By default the channel's weight is "
        "the class's post-softmax probability for that masked image, as the authors' code computes it. The "
        "paper writes the weight as a softmax over channels of the probability gains over a baseline; taken "
        "literally, gains of a few hundredths pass through a softmax over about a thousand channels and come out "
        "almost equal, so the map flattens into the channels' mean, the same for every class (the Learn page "
        "shows this on your image). Gradients play no part, so saturation and noise do not either, but it costs "
        "one forward pass per channel. Here every class's score is kept from the same passes, so switching the "
        "class is instant, and channels whose map is constant are known to give the baseline and skipped. The faster "
        "option (top channels below 1) scores only the channels whose activations vary most over the image, as "
        "tf-keras-vis's Faster Score-CAM does; the others weigh nothing and are not run."
    ),
    formula=r"H^k = \mathrm{norm}\big(\mathrm{up}(A^k)\big) \qquad "
    r"\alpha^c_k = \mathrm{softmax}\big(f(X \circ H^k)\big)_c \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
    paper="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
    "CVPR Workshops 2020 (weights as in the authors' code, haofanwang/Score-CAM)",
    definition="Wang et al., CVPRW 2020 and the authors' code: each channel as a min-max scaled mask, the masked "
    "input's post-softmax probability of the class as the weight",
    reference="authors' code",
    peers=(Peer("pytorch-grad-cam", "ScoreCAM", (('weights', 'logit softmax'), ('align_corners', True))),),
    ranking="Score-CAM contribution (for the class)",
    strengths=("No gradients: no saturation, no noise", "Any layer, any architecture", "Faithful by construction"),
    weaknesses=(
        "One forward pass per channel (slow cold)",
        "The paper's literal softmax over probability gains flattens the weights into a class-agnostic map",
    ),
    params=(WEIGHTS, BASELINE, ALIGN_CORNERS, TOP_CHANNELS),
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, "channels", baseline=params["baseline"], align_corners=bool(params["align_corners"]),
        top_variance=float(params["top_channels"]),
    ),
)


def scorecam(inputs: CamInputs, weights: str) -> MethodOutput:
    """Channel weights from the masked inputs' scores × activations."""
    found = scorecam_weights(inputs.mask_scores, inputs.target, weights)
    return MethodOutput(weighted_sum(found.to(inputs.activations.dtype), inputs.activations), found)


def scorecam_weights(scores: MaskScores, target: int, weights: str) -> torch.Tensor:
    """Score-CAM's channel weights under one of WEIGHTINGS, each mask's score averaged over its samples first (SS-CAM's
    noisy copies, IS-CAM's steps); masks left unscored weigh 0, and a softmax runs over the scored ones only."""
    if weights == "probability":
        found = sample_means(scores.probabilities[:, target], scores.samples)
    elif weights == "logit softmax":
        found = sample_means(scores.logits[:, target], scores.samples)
    else:
        found = sample_means(score_gains(scores, target, "probability"), scores.samples)
    scored = torch.ones_like(found, dtype=torch.bool) if scores.selected is None else scores.selected
    if weights.endswith("softmax"):
        found = torch.softmax(torch.where(scored, found, -torch.inf), dim=0)
    return torch.where(scored, found, torch.zeros_like(found))


def sample_means(values: torch.Tensor, samples: int) -> torch.Tensor:
    """Each mask's value averaged over its samples: row s·M + k of values is sample s of mask k."""
    return values.reshape(samples, -1).mean(dim=0)


SAMPLE_WEIGHTING = ("weights: the class's post-softmax probability averaged over the samples, as Score-CAM's authors' "
                    "code weights (our Score-CAM's default); the paper's softmax over channels of the averaged gains "
                    "is weights=gain softmax, which flattens the map (see Score-CAM's Learn)")

SSCAM = MethodCard(
    id="sscam",
    name="SS-CAM",
    family="Channel weighting",
    needs=frozenset({"mask_scores"}),
    cost="slow",
    summary="Score-CAM with every channel's mask shaken by random noise several times; the scores are averaged.",
    explanation=(
        "SS-CAM (Smoothed Score-CAM) builds on Score-CAM: each channel's map, upsampled to the image and scaled to "
        "[0, 1], is used as a mask on the image, and the network scores the masked image. Here each mask is scored "
        "N times, each time with fresh Gaussian noise added to the mask, and the channel's weight is the average "
        "score. Averaging over noisy copies, as SmoothGrad does for gradients, makes the weights depend less on the "
        "exact shape of one mask, so the map concentrates on what survives the noise. The noise is drawn from the "
        "seed shown, so a map can be reproduced. It costs N forward passes per channel (10 × 1280 on "
        "mobilenet_v2's last layer); every class's score comes from the same passes, so switching the class is "
        "instant."
    ),
    formula=r"H^k = \mathrm{norm}\big(\mathrm{up}(A^k)\big) \qquad "
    r"\alpha^c_k = \frac{1}{N}\sum_{i=1}^{N} \mathrm{softmax}\big(f(X \circ (H^k + \delta_i))\big)_c, \;"
    r"\delta_i \sim \mathcal{N}(0, \sigma^2) \qquad L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
    paper="Wang, Naidu, Michael & Kundu, SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization, "
    "arXiv:2006.14255, 2020",
    definition="Wang et al. 2020, SS-CAM(1): Gaussian noise N(0, σ²), σ = 2, added to each channel's upsampled, "
    "min-max scaled mask, N = 10 noisy masks per channel, the masked inputs' scores averaged per channel",
    differs=SAMPLE_WEIGHTING,
    reference="paper",
    peers=(Peer("torchcam", "SSCAM", (("weights", "logit softmax"), ("samples", 35))),),
    ranking="SS-CAM weight (for the class)",
    strengths=("No gradients", "Weights less sensitive to one mask's exact shape", "Reproducible from its seed"),
    weaknesses=("N forward passes per channel: ten times Score-CAM's cost at the default N",
                "A noise of σ = 2 on a [0, 1] mask swamps it; the map converges slowly in N"),
    params=(
        WEIGHTS, BASELINE, ALIGN_CORNERS,
        Param("samples", 10, "how many noisy copies of each channel's mask are scored (N)", minimum=1, maximum=100,
              read_by="input"),
        Param("noise", 2.0, "the standard deviation σ of the Gaussian noise added to each [0, 1] mask", minimum=0.0,
              maximum=10.0, read_by="input"),
        Param("seed", 0, "the seed the noise is drawn from (each sample of each channel has its own draw)",
              minimum=0, maximum=2**31 - 1, read_by="input"),
        TOP_CHANNELS,
    ),
    in_default_grid=False,
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, "channels", seed=int(params["seed"]), baseline=params["baseline"],
        align_corners=bool(params["align_corners"]), samples=int(params["samples"]), noise=float(params["noise"]),
        top_variance=float(params["top_channels"]),
    ),
)

ISCAM = MethodCard(
    id="iscam",
    name="IS-CAM",
    family="Channel weighting",
    needs=frozenset({"mask_scores"}),
    cost="slow",
    summary="Score-CAM with every channel's mask faded in from nothing to full in N steps; the scores are averaged.",
    explanation=(
        "IS-CAM (Integrated Score-CAM) borrows the idea of Integrated Gradients: instead of scoring a channel's "
        "mask once at full strength, as Score-CAM does, it scores the image under the mask scaled by 1/N, 2/N, … "
        "up to 1, a path from the empty mask to the full one, and the channel's weight is the average score along "
        "the path (a Riemann sum of the integral). A channel whose mask only helps at full strength gets less "
        "weight than one that helps all along. It costs N forward passes per channel; every class's score comes "
        "from the same passes, so switching the class is instant. torchcam's ISCAM adds the factors up instead "
        "(1/N, 1/N + 2/N, …, up to 5.5 for N = 10): integration cumulative."
    ),
    formula=r"H^k = \mathrm{norm}\big(\mathrm{up}(A^k)\big) \qquad "
    r"\alpha^c_k = \frac{1}{N}\sum_{i=1}^{N} \mathrm{softmax}\big(f(X \circ \tfrac{i}{N} H^k)\big)_c \qquad "
    r"L^c = \mathrm{ReLU}\Big(\sum_k \alpha^c_k A^k\Big)",
    paper="Naidu, Ghosh, Maurya, Nayak K & Kundu, IS-CAM: Integrated Score-CAM for axiomatic-based explanations, "
    "arXiv:2010.03023, 2020",
    definition="Naidu et al. 2020: each channel's upsampled, min-max scaled mask scaled by i/N for i = 1 … N (N = 10), "
    "the masked inputs' scores averaged per channel",
    differs=SAMPLE_WEIGHTING,
    reference="paper",
    peers=(Peer("torchcam", "ISCAM", (("weights", "logit softmax"), ("integration", "cumulative"))),),
    ranking="IS-CAM weight (for the class)",
    strengths=("No gradients", "Credits channels that help at every strength of their mask, not only at full"),
    weaknesses=("N forward passes per channel: ten times Score-CAM's cost at the default N",),
    params=(
        WEIGHTS, BASELINE, ALIGN_CORNERS,
        Param("samples", 10, "how many steps the mask is faded in by (N): factors 1/N, 2/N, … 1", minimum=1,
              maximum=100, read_by="input"),
        Param("integration", "linear", "how sample i of N scales the mask: "
              + "; ".join(f"{name}: {INTEGRATIONS[name]}" for name in ("linear", "cumulative")),
              choices=("linear", "cumulative"), read_by="input"),
        TOP_CHANNELS,
    ),
    in_default_grid=False,
    mask_spec=lambda layer, params, target: MaskSpec(
        layer, "channels", baseline=params["baseline"], align_corners=bool(params["align_corners"]),
        samples=int(params["samples"]), integration=params["integration"],
        top_variance=float(params["top_channels"]),
    ),
)


ABLATIONCAM = MethodCard(
    id="ablationcam",
    name="Ablation-CAM",
    family="Channel weighting",
    needs=frozenset({"ablation_scores"}),
    cost="fast",
    summary="Each channel is switched off; the drop of the class score is its weight.",
    explanation=(
        "Ablation-CAM removes one channel at a time (sets it to zero) and measures how far the class score "
        "falls: a channel the decision rests on leaves a large gap. The weight is that drop relative to the "
        "original score. The paper divides by the score itself, which turns every weight, and so the map, upside "
        "down for a class whose logit is negative (about half the classes of an image); here the drop is divided "
        "by the score's magnitude, which is the same for positive logits and keeps the sign for negative ones. "
        "Where the model splits into features and a classifier head at the layer, the ablated "
        "activations only need to pass through the head, a few milliseconds for all channels and all classes "
        "at once; elsewhere it takes one full forward pass per channel. The shared model is never modified."
    ),
    formula=r"w^c_k = \frac{y^c - y^c_{A^k=0}}{|y^c|} \qquad L^c = \mathrm{ReLU}\Big(\sum_k w^c_k A^k\Big)",
    paper="Desai & Ramaswamy, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
    "Gradient-free Localization, WACV 2020",
    definition="Desai & Ramaswamy, WACV 2020, eq. 3: w = (yᶜ − yᶜₖ) / yᶜ",
    differs="divided by |yᶜ|: the paper's division inverts the map of every class with a negative logit (about half "
    "of them)",
    reference="paper",
    peers=(Peer("pytorch-grad-cam", "AblationCAM"),),
    ranking="Ablation-CAM weight (for the class)",
    strengths=("No gradients", "Cheap through the head alone"),
    weaknesses=("Division by the score: unstable when it is near zero", "Zero is not 'absent' for layers with "
                "negative activations", "Differs from the paper by |y^c| for y^c < 0, where the paper's map is "
                "inverted"),
    logit_shift_invariant=False,
)


def ablationcam(inputs: CamInputs) -> MethodOutput:
    """Relative drop of the target's logit with each channel ablated × activations."""
    weights = ablation_weights(inputs.ablation, inputs.target)
    return MethodOutput(weighted_sum(weights.to(inputs.activations.dtype), inputs.activations), weights)


def ablation_weights(ablation: AblationScores, target: int) -> torch.Tensor:
    """Ablation-CAM's channel weights: the target logit's drop with each channel zeroed, relative to the logit's
    magnitude (so a negative logit does not flip the weights)."""
    original = ablation.original[target]
    return (original - ablation.logits[:, target]) / original.abs()




def mask_steps(source: Source, spec: MaskSpec, scores: MaskScores, shown: list[int], what: str) -> list[Step]:
    """masks → masked inputs for the masks in shown."""
    size = source.analysis.input.shape[-1]
    masks, _ = normalized_masks(scores.maps[shown], size, spec.align_corners)
    base = baseline_input(source.analysis.input, spec.baseline)
    masked = masked_inputs(source.analysis.input, base, masks)
    skipped = int(scores.skipped.sum())
    count = scores.maps.shape[0]
    scored = scores.selected if scores.selected is not None else torch.ones(count, dtype=torch.bool)
    passes = int((scored & ~scores.skipped).sum()) * scores.samples
    left_out = (f" Only the {int(scored.sum())} {what}s whose activations vary most are scored; the other "
                f"{int((~scored).sum())} weigh nothing and are not run." if scores.selected is not None else "")
    return [
        Step("masks", f"Each {what} becomes a mask",
             f"Each of the {count} {what} maps is upsampled to the {size}×{size} input and scaled to [0, 1]: 1 where "
             f"it fires most, 0 where least. {skipped} of them are constant, so their mask is empty and their input is "
             "the baseline itself: they are not run.",
             f"each {what} map upsampled to the input and scaled to [0, 1]",
             (Heatmaps(tuple((f"mask of {what} {k}", array(masks[i, 0])) for i, k in enumerate(shown))),),
             array(scores.maps)),
        Step("masked inputs", "The masked inputs",
             f"Each mask keeps the image where it is high and {BASELINES[spec.baseline]} elsewhere: "
             "X_b + H ⊙ (X − X_b). "
             f"Every masked input goes through the whole network: {passes} passes, once for this image, "
             f"shared by every class.{left_out}",
             f"the image under each mask, {BASELINES[spec.baseline]} elsewhere",
             (input_pictures(source, torch.cat([base, masked]), ["baseline", *[f"{what} {k}" for k in shown]]),),
             array(base)),
    ]


def scores_step(source: Source, scores: MaskScores, gains: torch.Tensor, what: str, name: str = "") -> Step:
    """The class score (name: "logit" or "probability") of each masked input against the baseline's."""
    name = name or source.params["score"]
    if name == "logit":
        values, baseline = scores.logits[:, source.target], scores.baseline_logits[source.target]
    else:
        values, baseline = scores.probabilities[:, source.target], scores.baseline_probabilities[source.target]
    best = int(torch.argmax(gains))
    keys = top(gains, SHOWN_BARS)
    return Step(
        "scores", "Their scores against the baseline",
        f"The network's {name} of “{source.label}” is {num(baseline)} on the baseline and {num(values[best])} on "
        f"{what} {best}'s masked input, a gain of {float(gains[best]):+.3g}, the largest. "
        f"{int((gains > 0).sum())} of {gains.numel()} masks raise the score.",
        f"the class {name} of each masked input minus the baseline's",
        (Bars(f"{name} of “{source.label}” on the masked inputs with the largest gains", what, tuple(keys), name,
              array(values[keys]), float(baseline), "baseline"),
         Line(f"all {gains.numel()} gains, sorted", f"{what} (by rank)", "gain",
              array(gains.sort(descending=True).values))),
        array(gains),
    )


WEIGHTING_TEXT = {
    "probability": "As in the authors' code, a channel's weight is the probability of “{label}” on its masked input "
    "itself.",
    "logit softmax": "As in pytorch-grad-cam, the weights are a softmax over the channels of the masked inputs' logits "
    "of “{label}”; logits differ by whole units, so the softmax separates them.",
    "gain softmax": "As the paper's equations are written, the weights are a softmax over the channels of the "
    "probability gains.",
    "gain": "Each channel's probability gain over the baseline is its weight.",
}


def flattening_step(source: Source, scores: MaskScores, acts: torch.Tensor) -> Step:
    """Why the paper's softmax over probability gains, taken literally, gives nearly one map for every class."""
    other = source.analysis.comparison_class(source.target)
    labels = source.analysis.explainer.labels
    count = acts.shape[0]
    literal = scorecam_weights(scores, source.target, "gain softmax")
    literal_other = scorecam_weights(scores, other, "gain softmax")
    gains = score_gains(scores, source.target, "probability")
    flat = [weighted_sum(w.to(acts.dtype), acts) for w in (literal, literal_other)]
    mean = acts.mean(dim=0)
    weighted = [weighted_sum(scorecam_weights(scores, c, source.params["weights"]).to(acts.dtype), acts)
                for c in (source.target, other)]

    def r(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1])

    return Step(
        "softmax", "Why the paper's softmax, taken literally, flattens the map",
        f"The gains of “{labels[source.target]}” lie between {float(gains.min()):+.3g} and {float(gains.max()):+.3g}: "
        f"probabilities move by fractions. The exponential of such small numbers is close to 1 for every channel, so "
        f"the softmax over the {count} channels gives weights from {num(literal.min())} to {num(literal.max())}, "
        f"where an even share is 1/{count} = {num(1 / count)}. The map is then almost the plain mean of the channels "
        f"(r = {r(flat[0], mean):.3f}) and hardly depends on the class: its map and that of “{labels[other]}” "
        f"correlate at r = {r(flat[0], flat[1]):.3f}. With the weights chosen here ({source.params['weights']}) the "
        f"two classes' maps correlate at r = {r(weighted[0], weighted[1]):.3f}.",
        "a softmax over probability gains, as the paper writes it",
        (Line(f"the literal softmax weights, sorted (even share {num(1 / count)})", "channel (by rank)", "weight",
              array(literal.sort(descending=True).values)),
         Heatmaps(((f"literal: “{labels[source.target]}”", array(flat[0])), (f"literal: “{labels[other]}”",
                    array(flat[1])), ("the channels' mean", array(mean)),
                   (f"{source.params['weights']}: “{labels[source.target]}”", array(weighted[0])),
                   (f"{source.params['weights']}: “{labels[other]}”", array(weighted[1]))), signed(acts))),
        array(literal),
    )


def scorecam_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    choice = source.params["weights"]
    gains = score_gains(scores, source.target, "probability")
    channels = top(weights, SHOWN_CHANNELS)
    weighting = Step("weights", "The channel weights", WEIGHTING_TEXT[choice].format(label=source.label) + " "
                     + weights_text(weights), f"weights by {choice}", (weight_bars(weights, "weight"),),
                     array(weights))
    return [activations_step(source, channels, "the ones with the largest weights (found below)"),
            *mask_steps(source, spec, scores, channels, "channel"),
            scores_step(source, scores, gains, "channel", "probability"),
            flattening_step(source, scores, acts), weighting, weighted_sum_step(weights, acts, raw)]


def sample_steps(source: Source, spec: MaskSpec, scores: MaskScores, channel: int) -> list[Step]:
    """The samples of one channel's mask (noisy copies or faded-in steps) as inputs, and their class scores."""
    size = source.analysis.input.shape[-1]
    count = scores.maps.shape[0]
    shown = sorted({0, spec.samples // 2, spec.samples - 1})
    masks = sampled_masks(scores.maps, spec, torch.tensor(shown), torch.full((len(shown),), channel), size)
    base = baseline_input(source.analysis.input, spec.baseline)
    pictures = input_pictures(source, masked_inputs(source.analysis.input, base, masks),
                              [f"sample {i + 1} of {spec.samples}" for i in shown])
    values = scores.probabilities[:, source.target].reshape(spec.samples, count)[:, channel]
    if spec.noise > 0:
        stage, heading = "noise", f"Channel {channel}'s mask under noise"
        text = (f"Each of the {spec.samples} samples adds fresh Gaussian noise of σ = {num(spec.noise)} (seed "
                f"{spec.seed}) to the [0, 1] mask, pixel by pixel: the noisy masks of channel {channel} range from "
                f"{num(masks.min())} to {num(masks.max())}. Where the mask is negative the input is flipped about "
                "the baseline.")
        how = f"{spec.samples} noisy copies of each mask, σ = {num(spec.noise)}"
    else:
        factors = mask_scales(spec.integration, spec.samples)
        stage, heading = "integration", f"Channel {channel}'s mask faded in"
        text = (f"The mask is scaled by {spec.samples} factors, from {num(factors[0])} to {num(factors[-1])}: "
                f"{INTEGRATIONS[spec.integration]}. The image appears step by step, and each step is one pass.")
        how = f"each mask scaled by {spec.samples} factors ({spec.integration})"
    heatmaps = Heatmaps(tuple((f"mask, sample {i + 1}", array(masks[j, 0])) for j, i in enumerate(shown)), True)
    samples = Step(stage, heading, text, how, (heatmaps, pictures), array(masks))
    averaged = Step(
        "scores", f"Channel {channel}'s scores, averaged",
        f"The probability of “{source.label}” over channel {channel}'s {spec.samples} samples goes from "
        f"{num(values.min())} to {num(values.max())}; its mean, {num(values.mean())}, is what the channel's score "
        f"becomes (the baseline alone gives {num(scores.baseline_probabilities[source.target])}).",
        "each mask's class probability averaged over its samples",
        (Line(f"probability of “{source.label}” on each sample of channel {channel}", "sample", "probability",
              array(values)),),
        array(values),
    )
    return [samples, averaged]


def sampled_lesson(source: Source) -> list[Step]:
    """SS-CAM's and IS-CAM's lesson: Score-CAM's masks, one channel's samples and their average, the weights."""
    acts, weights, raw = source.activations(), source.weights, source.raw
    spec = source.card.mask_spec(source.layer, source.params, source.target)
    scores = source.analysis.mask_scores(spec, progress=source.progress)
    channels = top(weights, SHOWN_CHANNELS)
    choice = source.params["weights"]
    weighting = Step("weights", "The channel weights", f"Each channel's score is averaged over its {spec.samples} "
                     f"samples first; then: {WEIGHTINGS[choice]}. " + weights_text(weights), f"weights by {choice}",
                     (weight_bars(weights, "weight"),), array(weights))
    return [activations_step(source, channels, "the ones with the largest weights (found below)"),
            *mask_steps(source, spec, scores, channels, "channel"),
            *sample_steps(source, spec, scores, channels[0]), weighting, weighted_sum_step(weights, acts, raw)]


def ablationcam_lesson(source: Source) -> list[Step]:
    acts, weights, raw = source.activations(), source.weights, source.raw
    ablation = source.analysis.ablation_scores(source.layer, progress=source.progress)
    channels = focus(weights, acts)
    original = float(ablation.original[source.target])
    ablated = ablation.logits[:, source.target]
    keys = top(ablated - original, SHOWN_BARS)
    worst = keys[0]
    route = "the head alone (the layers after it)" if ablation.head_only else "the whole network (one pass each)"
    scores = Step(
        "scores", "The class score with each channel switched off",
        f"Each of the {acts.shape[0]} channels is set to zero in turn and the rest goes through {route}. The logit of "
        f"“{source.label}” is {num(original)} with every channel; without channel {worst} it is "
        f"{num(ablated[worst])}, the biggest change.",
        "the class logit with each channel set to zero",
        (Bars("logit with the channel zeroed (largest changes)", "channel", tuple(keys), "ablated logit",
              array(ablated[keys]), original, "every channel"),),
        array(ablated),
    )
    weighting = Step("weights", "The channel weights: the relative drop",
                     f"A channel's weight is how far the logit falls without it, relative to the logit's size: "
                     f"(y − yₖ) / |y|. The paper divides by y itself, which for a negative logit, here "
                     f"{'' if original < 0 else 'not '}the case, would turn every weight upside down. "
                     f"{weights_text(weights)}", "the relative drop of the logit without the channel",
                     (weight_bars(weights, "weight"),), array(weights))
    return [activations_step(source, channels, FOCUS), scores, weighting, weighted_sum_step(weights, acts, raw)]


register(SCORECAM, scorecam, scorecam_lesson)
register(SSCAM, scorecam, sampled_lesson)
register(ISCAM, scorecam, sampled_lesson)
register(ABLATIONCAM, ablationcam, ablationcam_lesson)
