"""Benchmark: what a class switch and an upload cost in the browser, and each method's class switch through the API.

    python bench/browser_switch.py [--photo PATH] [--repeats N] [--skip-browser] [--skip-api] [--all-peers]
                                   [--browser normal|idle]

Starts its own `streamlit run app.py` (so every cache is cold) and drives it in headless Chromium (1500×1100) with
scripts/dashboard_driver.py, then prints one markdown table:
1. upload → grid: upload the photo (darknet's dog.jpg, else scikit-image's chelsea) on the home page and open
   Compare (the default grid); the seconds from the click on "Compare methods" to the first map shown (its picture
   decoded), to the full grid (every default method's picture decoded, none partial) and to the settled page (the
   class-specificity captions come after the maps; settle's 0.3 s idle check is not counted);
2. class switch: on that grid, choose another sidebar "Target class"; the seconds from the click until every map
   of the grid is repainted for the new class and decoded (the DOM is read every 20 ms; a class-independent method
   may keep its picture), and until the page settles. First pickup (717), then --repeats other classes never asked
   (bicycle 444, the photo's top-10, the class of the lowest logit): median and max; then back to pickup, whose
   pictures were drawn before;
3. unless --skip-api, in this process on one torch thread: for every registered method on the photo, a fresh
   Analysis, a warm-up call for the top class, then the median of the first calls (an.cam, raw map) for 3 other
   classes; and per call on the same input and classes, pytorch-grad-cam and torchcam where they have the method
   (they cache nothing, so each call is a full run): after a warm-up call, the median of the same 3 classes, or the
   warm-up call alone when it took more than SLOW_PEER_S seconds. pytorch-grad-cam's AblationCAM (1280 ablated
   passes per call, minutes on one thread) only with --all-peers. Settings that take minutes at their default are
   made cheaper (in the table).
--browser idle runs Chromium under Linux's idle scheduling class (after the server, as on the user's own machine;
scripts/dashboard_driver.idle_chromium). A report, never a test: the exit code is 0. Screenshots go to
artifacts/screenshots/browser_switch/ when artifacts/ exists.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from browser_timing import a_photo  # noqa: E402 - bench/ is the script's own folder
from gradient_family_methods import peers as gradient_family_peers  # noqa: E402
from headless_methods import dff_call  # noqa: E402
from headless_methods import pgc_call as pgc_single_call  # noqa: E402
from new_methods import guided_call, guided_gradcam_call, timed, torchcam_smooth_call, trainable_copy  # noqa: E402
from score_family_methods import gradcam_scorecam_call, torchcam_call  # noqa: E402

from cam_core import Explainer, methods  # noqa: E402
from cam_core.registry import MethodCard  # noqa: E402
from scripts.dashboard_driver import (  # noqa: E402
    ARGS,
    CHROMIUM,
    UPLOADER,
    default_grid,
    idle_chromium,
    no_errors,
    playwright_api,
    settle,
    streamlit_server,
    type_into,
)

SHOTS = ROOT / "artifacts" / "screenshots" / "browser_switch"
POLL = 0.02  # seconds between two reads of the grid
SWITCH_TARGET_MS = 5.0
REPAINT_TARGET_S = 0.5
GRID_TARGET_S = 3.0
SLOW_PEER_S = 5.0
MINUTES_PEERS = {"ablationcam"}  # peers taking minutes per call, timed only with --all-peers
SCORE_LAYER = "features.13"  # mobilenet_v2's 96-channel layer: 96 masked passes instead of 1280
# Cheaper settings for the methods whose default takes minutes on one thread (ours and the peer alike).
CHEAP: dict[str, dict] = {
    "scorecam": {"layer": SCORE_LAYER},
    "sscam": {"layer": SCORE_LAYER, "samples": 2},
    "iscam": {"layer": SCORE_LAYER, "samples": 2},
    "polycam": {"variant": "PCAM+", "layers": ("features.4.conv.0", "features.7.conv.0")},  # 336 passes, not 4384
    "rise": {"samples": 500},
    "lime": {"samples": 200},
}
ATTENTION_MODEL = "vit_small_patch16_224"  # random weights: for the methods a CNN cannot run

# (caption, src, decoded) of every picture in the main area, and whether the app is still busy.
GRID_JS = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  const one = main ? main.querySelectorAll('[data-testid=stImageContainer]') : [];
  const pictures = Array.from(one.length || !main ? one : main.querySelectorAll('[data-testid=stImage]'));
  const shown = pictures.map(el => {
    const img = el.querySelector('img');
    const caption = el.querySelector('[data-testid=stImageCaption]');
    return [caption ? caption.innerText : '', img ? img.src : '', !!img && img.complete && img.naturalWidth > 0];
  });
  const busy = !!document.querySelector('[data-stale=true], [data-testid=stSpinner], [data-testid=stProgress], '
                                        + '[data-testid=stStatusWidgetRunningIcon]');
  return [shown, busy, performance.now() - (window.__camClick ?? performance.now())];
}"""
# The page's own clock at the next click (Playwright's click takes 50–200 ms of its own before the browser sees it).
CLICK_JS = """() => { window.__camClick = undefined;
  document.addEventListener('click', () => { window.__camClick = performance.now(); },
                            {capture: true, once: true}); }"""


# ---- the browser --------------------------------------------------------------------------------------------------

def read_grid(tab, names: list[str]) -> tuple[dict[str, tuple[str, bool]], bool, float]:
    """{method name: (picture src, decoded)} for the finished maps of the grid (partial ones left out), busy, and
    the seconds since the click CLICK_JS watched for, on the page's clock (0 before it)."""
    shown, busy, since = tab.evaluate(GRID_JS)
    pictures = {}
    for caption, source, decoded in shown:
        name, _, rest = caption.partition(" · ")
        if name in names and "so far" not in rest:
            pictures[name] = (source, decoded)
    return pictures, busy, since / 1e3


def click(tab, locator) -> None:
    """Click locator, the page noting the moment it sees the click (read_grid's clock)."""
    tab.evaluate(CLICK_JS)
    locator.click()


def upload_to_grid(tab, photo: Path, names: list[str], timeout: float = 300.0) -> tuple[float, float, float]:
    """Upload photo, open Compare; seconds from the click to the first map shown, the full grid and the settled
    page."""
    settle(tab, "CAM Explorer", timeout=180)
    tab.locator(UPLOADER).set_input_files(str(photo))
    tab.get_by_text(f"{photo.name} ·").first.wait_for(timeout=120_000)
    settle(tab)
    clicked = time.perf_counter()
    click(tab, tab.get_by_role("link", name="Compare methods"))
    first = None
    while time.perf_counter() - clicked < timeout:
        pictures, _, since = read_grid(tab, names)
        decoded = [name for name, (_, done) in pictures.items() if done]
        if first is None and decoded:
            first = since
        if len(decoded) == len(names):
            break
        time.sleep(POLL)
    else:
        raise AssertionError(f"the grid shows {sorted(pictures)} after {timeout:.0f} s, not {names}")
    full = since
    settled = read_grid(tab, names)[2] + settle(tab, timeout=timeout)
    no_errors(tab)
    return first, full, settled


@dataclass(frozen=True)
class Switch:
    """One class switch: the seconds to the repainted grid, to the grid but the maps that run model passes for a new
    class, and to the settled page; the maps that kept their picture."""

    label: str
    repaint: float
    quick: float
    settled: float
    kept: list[str]
    last: str = ""  # the map repainted last


def passes_per_class(names: list[str]) -> set[str]:
    """The methods of names that run model passes for each new class at their defaults (Group-CAM)."""
    return {card.name for card in methods() if card.name in names and card.passes_per_class()}


def switch_class(tab, label: str, index: int, names: list[str], independent: set[str], slow: set[str],
                 timeout: float = 120.0) -> Switch:
    """Choose class index (named label) in the sidebar and time, on the page's clock from the click, the grid's
    repaint (without and with the methods in slow) and the settled page. A map is repainted when it shows a decoded
    picture that differs from the one before; one that keeps its picture until the app has been idle for a second
    (a class-independent method, or the same map for both classes) is named in kept and not waited for."""
    before = {name: source for name, (source, _) in read_grid(tab, names)[0].items()}
    box = tab.get_by_role("combobox", name="Target class", exact=True)
    type_into(tab, box, label, f"{label} ({index})")
    clicked = time.perf_counter()
    click(tab, tab.get_by_role("option", name=f"{label} ({index})").first)
    idle_since, repainted = None, {}
    while time.perf_counter() - clicked < timeout:
        pictures, busy, since = read_grid(tab, names)
        for name, (source, decoded) in pictures.items():
            if decoded and source != before.get(name):
                repainted.setdefault(name, since)
        if set(repainted) | independent >= set(names):
            break
        done = len(pictures) == len(names) and all(decoded for _, decoded in pictures.values())
        now = time.perf_counter()
        idle_since = None if busy or not done else idle_since or now
        if idle_since is not None and now - idle_since >= 1.0:
            break
        time.sleep(POLL)
    else:
        raise AssertionError(f"the grid was not repainted for {label} within {timeout:.0f} s")
    kept = [name for name in names if name not in independent and name not in repainted]
    settled = read_grid(tab, names)[2] + settle(tab, timeout=timeout)
    no_errors(tab)
    quick = [at for name, at in repainted.items() if name not in slow]
    last = max(repainted, key=repainted.get, default="")
    return Switch(f"{label} ({index})", max(repainted.values(), default=0.0), max(quick, default=0.0), settled,
                  kept, last)


def switch_classes(photo: Path, repeats: int) -> list[tuple[int, str]]:
    """The classes to switch to after pickup: bicycle, the photo's top-10 (not its top class), the lowest logit;
    repeats of them, the lowest logit last."""
    from PIL import Image

    explainer = Explainer("mobilenet_v2")
    with Image.open(photo) as image:
        analysis = explainer.analyze(image.convert("RGB"))
    top = [index for index, _, _ in analysis.top_k(10)]
    lowest = int(analysis.logits.argmin())
    wanted = [444, *top[1:]]
    classes = [index for index in dict.fromkeys(wanted) if index not in (top[0], 717, lowest)][: max(0, repeats - 1)]
    return [(index, explainer.labels[index]) for index in [*classes, lowest]]


def drive(photo: Path, names: list[str], others: list[tuple[int, str]], chromium: str
          ) -> tuple[tuple[float, ...], list[Switch]]:
    """On a new server, in the browser chromium: upload → grid, then a switch to pickup, to each of others and back
    to pickup (the last)."""
    independent = {card.name for card in methods() if not card.needs and card.name in names}
    shots = SHOTS if SHOTS.parent.parent.is_dir() else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    with streamlit_server("browser_switch.log") as url, playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1100})
        tab.goto(url)
        upload = upload_to_grid(tab, photo, names)
        shot(tab, shots, "grid.png")
        slow = passes_per_class(names)
        switches = [switch_class(tab, label, index, names, independent, slow)
                    for index, label in [(717, "pickup"), *others]]
        shot(tab, shots, "switched.png")
        switches.append(switch_class(tab, "pickup", 717, names, independent, slow))
        shot(tab, shots, "back.png")
        browser.close()
    return upload, switches


def browser_rows(photo: Path, repeats: int, priority: str) -> list[tuple[str, str, str]]:
    """Rows of the table for parts 1 and 2, the browser at priority ("idle" or "normal")."""
    names = default_grid()
    slow = passes_per_class(names)
    chromium = idle_chromium(Path(tempfile.mkdtemp(prefix="browser-switch-"))) if priority == "idle" else CHROMIUM
    (first, full, settled), switches = drive(photo, names, switch_classes(photo, repeats), chromium)
    print(f"upload → first map {first:.2f} s, full grid {full:.2f} s, settled {settled:.2f} s", flush=True)
    for done in switches:
        note = f" (kept their picture: {', '.join(done.kept)})" if done.kept else ""
        print(f"  switch to {done.label}: repaint {done.quick:.2f} s without {', '.join(sorted(slow))}, "
              f"{done.repaint:.2f} s with (last: {done.last}), settled {done.settled:.2f} s{note}", flush=True)
    *new, back = switches
    repaints, quicks, settles = [s.repaint for s in new], [s.quick for s in new], [s.settled for s in new]
    without = f"every map but {', '.join(sorted(slow))} (model passes for each new class)" if slow else "every map"
    return [
        (f"browser: upload → first map shown ({len(names)} maps, {photo.name})", f"{first:.2f} s", ""),
        ("browser: upload → full grid shown and decoded", f"{full:.2f} s", met(full, GRID_TARGET_S)),
        ("browser: upload → page settled (specificity captions included)", f"{settled:.2f} s", ""),
        (f"browser: class switch → {without} repainted, {len(new)} new classes "
         f"({', '.join(s.label for s in new)}): median / max",
         f"{statistics.median(quicks):.2f} / {max(quicks):.2f} s", met(max(quicks), REPAINT_TARGET_S)),
        ("browser: class switch → the whole grid repainted: median / max",
         f"{statistics.median(repaints):.2f} / {max(repaints):.2f} s", met(max(repaints), REPAINT_TARGET_S)),
        ("browser: class switch → page settled (start of settle's 0.3 s idle check): median / max",
         f"{statistics.median(settles):.2f} / {max(settles):.2f} s", ""),
        ("browser: switch back to pickup (717), pictures drawn before → repainted / settled",
         f"{back.repaint:.2f} / {back.settled:.2f} s", met(back.repaint, REPAINT_TARGET_S)),
    ]


def met(value: float, target: float) -> str:
    return f"yes (≤ {target:g})" if value <= target else f"**no** (> {target:g})"


def shot(tab, folder: Path | None, name: str) -> None:
    """A screenshot of the grid's top into folder (when there is one)."""
    if folder is not None:
        tab.locator("[data-testid=stMain] h3").first.scroll_into_view_if_needed()
        tab.screenshot(path=str(folder / name), full_page=True)


# ---- the API ------------------------------------------------------------------------------------------------------

def ours_ms(explainer: Explainer, picture, method: str, params: dict, classes: list[int]) -> list[float]:
    """A fresh Analysis, a warm-up call for classes[0], then the first call for each other class, in ms."""
    explainer.cache.clear()
    gc.collect()
    analysis = explainer.analyze(picture)
    analysis.cam(method, target=classes[0], **params)
    times = [timed(lambda target=target: analysis.cam(method, target=target, **params)) * 1e3
             for target in classes[1:]]
    explainer.cache.clear()
    return times


def peer_ms(make: Callable[[int], object], classes: list[int]) -> str:
    """After a warm-up call for classes[0], the peer's median per call over the other classes; the warm-up call
    alone when it took over SLOW_PEER_S."""
    try:
        first = timed(lambda: make(classes[0]))
        if first > SLOW_PEER_S:
            return f"{first * 1e3:.0f} (1 call)"
        return f"{statistics.median(timed(lambda target=target: make(target)) for target in classes[1:]) * 1e3:.1f}"
    except Exception as exc:  # noqa: BLE001 - a report: say what failed and go on
        return f"failed: {type(exc).__name__}: {exc}"
    finally:
        gc.collect()


def torchcam_cam_call(kind: str, model, layer: str, model_input: torch.Tensor) -> Callable[[int], object]:
    """A torchcam CAM extractor (GradCAM, LayerCAM) for one class, hooked anew per call."""
    import torchcam.methods

    def make(target: int):
        with getattr(torchcam.methods, kind)(model, layer) as extractor:
            scores = model(model_input.clone())
            return extractor(class_idx=target, scores=scores)

    return make


def peer_calls(explainer: Explainer, model_input: torch.Tensor, card: MethodCard, cheap: dict
               ) -> dict[str, Callable[[int], object]]:
    """{library: a call for one class} of the peers that have card's method (at our defaults made cheap by cheap), on
    a trainable copy of the model."""
    import pytorch_grad_cam

    params = {**{param.name: param.default for param in card.params}, **cheap}
    model = trainable_copy(explainer.model.module)
    layer = params.get("layer", explainer.default_layer)
    calls: dict[str, Callable[[int], object]] = {}
    special = {
        "scorecam": lambda: gradcam_scorecam_call(model, layer, model_input),
        "sscam": lambda: torchcam_call("sscam", model, layer, model_input, params["samples"]),
        "iscam": lambda: torchcam_call("iscam", model, layer, model_input, params["samples"]),
        "dff": lambda: dff_call(model, layer, explainer.spec.head[-1], model_input, params["concepts"]),
        "guidedbackprop": lambda: guided_call(model, model_input),
        "guidedgradcam": lambda: guided_gradcam_call(model, layer, model_input),
        "smoothgradcampp": lambda: torchcam_smooth_call(model, layer, model_input, params["samples"],
                                                        params["sigma"] * float(model_input.max() - model_input.min())),
    }
    family = gradient_family_peers(explainer, model_input) if card.id in ("fullgrad", "finercam", "shapleycam") else {}
    for peer in card.peers:
        if peer.library not in ("pytorch-grad-cam", "torchcam"):
            continue
        found = [call for name, call in family.get(card.id, []) if name.startswith(peer.library)]
        if found:
            calls[peer.library] = found[0]
        elif card.id in special:
            calls[peer.library] = special[card.id]()
        elif peer.library == "pytorch-grad-cam":
            calls[peer.library] = pgc_single_call(getattr(pytorch_grad_cam, peer.name), model, layer, model_input)
        else:
            calls[peer.library] = torchcam_cam_call(peer.name, model, layer, model_input)
    return calls


def api_rows(photo: Path, all_peers: bool) -> list[tuple[str, ...]]:
    """One row per registered method (on a vision transformer with random weights for those a CNN cannot run), with
    torch and numpy's BLAS on one thread each, as the dashboard's torch runs."""
    from PIL import Image
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    torch.set_num_threads(1)
    with Image.open(photo) as image:
        picture = image.convert("RGB")
    main = Explainer("mobilenet_v2")
    attention = None
    rows = []
    with threadpool_limits(1):
        for card in methods():
            if main.unmet(card):
                attention = attention or Explainer(ATTENTION_MODEL, weights="random")
                rows.append(method_row(card, attention, picture, all_peers, f" ({ATTENTION_MODEL}, random weights)"))
            else:
                rows.append(method_row(card, main, picture, all_peers, ""))
            print(" | ".join(rows[-1]), flush=True)
            gc.collect()
    return rows


def method_row(card: MethodCard, explainer: Explainer, picture, all_peers: bool, model_note: str) -> tuple[str, ...]:
    """card's row: our median class switch, whether ≤ 5 ms, and the peers' per-call times (none on a model named in
    model_note)."""
    params = CHEAP.get(card.id, {})
    analysis = explainer.analyze(picture)
    classes = [index for index, _, _ in analysis.top_k(4)]
    model_input = analysis.input.detach().clone()
    del analysis
    median = statistics.median(ours_ms(explainer, picture, card.id, params, classes))
    peers = {} if model_note else peer_calls(explainer, model_input, card, params)
    skip = card.id in MINUTES_PEERS and not all_peers
    cells = {library: "minutes (--all-peers)" if skip else peer_ms(call, classes) for library, call in peers.items()}
    setting = ", ".join(f"{k}={'+'.join(v) if isinstance(v, tuple) else v}" for k, v in params.items())
    label = card.name + (f" ({setting})" if setting else "") + model_note
    return (f"API: {label}, class switch", f"{median:.2f} ms", met(median, SWITCH_TARGET_MS),
            cells.get("pytorch-grad-cam", "—"), cells.get("torchcam", "—"))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=None, help="the photo (default darknet's dog.jpg, or chelsea)")
    parser.add_argument("--repeats", type=int, default=6, help="new classes switched to after pickup (default 6)")
    parser.add_argument("--skip-browser", action="store_true", help="leave out parts 1 and 2")
    parser.add_argument("--skip-api", action="store_true", help="leave out part 3")
    parser.add_argument("--all-peers", action="store_true", help="also time the peers that take minutes per call")
    parser.add_argument("--browser", choices=("idle", "normal"), default="normal",
                        help="the browser's scheduling class (idle: after the server, as on the user's own machine)")
    args = parser.parse_args()
    began = time.perf_counter()
    photo = a_photo(args.photo)
    browser = []
    if not args.skip_browser:
        if playwright_api is None:
            print("the browser part needs Playwright (pip install playwright) and Debian's chromium")
        else:
            browser = browser_rows(photo, max(1, args.repeats), args.browser)
    api = [] if args.skip_api else api_rows(photo, args.all_peers)
    print(f"\n`python bench/browser_switch.py` ({photo.name}, mobilenet_v2; browser: headless Chromium 1500×1100 at "
          f"{args.browser} priority on a cold server; API: one torch thread; "
          f"{time.perf_counter() - began:.0f} s in all)\n")
    print(table(("measure", "ours", "target met?", "pytorch-grad-cam ms per call", "torchcam ms per call"),
                [(*row, "", "") for row in browser] + api))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a report: never a failing exit code
        import traceback

        traceback.print_exc()
        print(f"benchmark stopped early: {type(exc).__name__}: {exc}")
    sys.exit(0)
