"""Driving the real app in a browser without racing Streamlit's reruns.

Every widget change reruns the script; while a rerun is under way the page mixes the new
run's elements with the last run's (stale ones), and a widget drawn anew drops what was just
typed or picked. So a browser test acts and reads only on a settled page: settle() waits for
it, act() does one action between two settles, act_until() repeats an action until its value
holds, read_page() reads many values in one look."""
from __future__ import annotations

from collections.abc import Callable

# A JavaScript expression: true when no script run is under way and every element on the page
# is from the last finished run (none stale, none still a placeholder). Only then does the page
# show one redraw's state; mid-run it mixes the new run's elements with the last run's.
IDLE_JS = ("(() => { const app = document.querySelector(\"[data-testid='stApp']\");"
           " return !!app && app.getAttribute('data-test-script-state') === 'notRunning'"
           " && !document.querySelector(\"[data-stale='true'], [data-testid='stSkeleton']\"); })()")

# The page's state attribute flips to "running" only once the server's answer to a rerun
# request arrives: right after a click it still reads "notRunning", and a very short run can
# pass without the attribute ever changing (React draws both updates at once). So the page's
# own messages are watched: every rerun request the page sends (a BackMsg whose first field is
# rerun_script, number 11) and every end of a script run it receives (a ForwardMsg with
# script_finished, number 6, other than "finished early for a rerun", 2), drawn once two
# animation frames have passed after it. Installed once per loaded page (idempotent).
_TRACK_JS = """() => {
  if (window.__studio) return;
  const t = window.__studio = {seq: 0, sent: 0, sends: 0, drawn: 0, sockets: new WeakSet()};
  const varint = (b, i) => { let v = 0, m = 1; while (i < b.length) { const x = b[i++];
    v += (x & 127) * m; m *= 128; if (!(x & 128)) break; } return [v, i]; };
  const finished = (data) => {       // the script_finished status of a ForwardMsg, or null
    if (!(data instanceof ArrayBuffer)) return null;
    const b = new Uint8Array(data); let i = 0;
    while (i < b.length) {
      let tag; [tag, i] = varint(b, i); const field = Math.floor(tag / 8), wire = tag % 8;
      if (wire === 0) { let v; [v, i] = varint(b, i); if (field === 6) return v; }
      else if (wire === 2) { let n; [n, i] = varint(b, i); i += n; }
      else if (wire === 1) i += 8; else if (wire === 5) i += 4; else return null;
    }
    return null;
  };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (!t.sockets.has(this)) {
      t.sockets.add(this);
      this.addEventListener('message', (event) => {
        const status = finished(event.data);
        if (status === null || status === 2) return;
        const at = ++t.seq;
        requestAnimationFrame(() => requestAnimationFrame(() => { t.drawn = Math.max(t.drawn, at); }));
      });
    }
    const bytes = data instanceof Uint8Array ? data : data instanceof ArrayBuffer
      ? new Uint8Array(data) : null;
    if (bytes && bytes.length && bytes[0] === ((11 << 3) | 2)) { t.sent = ++t.seq; t.sends++; }
    return send.call(this, data);
  };
}"""

# True when the page is idle (IDLE_JS) and every rerun it asked for has ended and been drawn.
SETTLED_JS = (f"(() => {IDLE_JS} && (!window.__studio"
              " || window.__studio.sent < window.__studio.drawn || !window.__studio.sent))()")


def _reruns_asked(page) -> int:
    page.evaluate(_TRACK_JS)
    return page.evaluate("() => window.__studio.sends")


# Only so that a broken app cannot hang the suite: a script run may take minutes on a loaded
# machine (a first audit, an import), and settling waits for it.
HANG_GUARD_MS = 600_000


def settle(page) -> None:
    """Wait until the page is settled: no script run under way, no stale element or skeleton,
    every rerun the page asked for ended and drawn, and still so two animation frames later
    with no new rerun asked for meanwhile (a click's rerun request may leave late)."""
    page.evaluate(_TRACK_JS)
    while True:
        page.wait_for_function(f"() => {SETTLED_JS}", timeout=HANG_GUARD_MS)
        if page.evaluate(
                "() => new Promise(r => { const asked = window.__studio.sends;"
                " requestAnimationFrame(() => requestAnimationFrame(() =>"
                f" r({SETTLED_JS} && window.__studio.sends === asked))); }})"):
            return


RERUN_ASKED_MS = 15_000     # an action that reruns but asked for none by then was dropped


def act(page, action: Callable[[], object], *, rerun: bool = True) -> None:
    """Settle, do ``action`` (a click, a key, a choice), then settle again. With ``rerun``
    (the action changes a widget, so Streamlit reruns), first wait until the page asked for
    its rerun: a widget may send its value a moment after the click or key press.

    For actions that must happen exactly once (Create, Import, Quarantine); wait for their
    outcome afterwards. For setting a value, act_until is safer."""
    settle(page)
    asked = _reruns_asked(page)
    action()
    if rerun:
        page.wait_for_function(f"() => window.__studio && window.__studio.sends > {asked}")
    settle(page)


def act_until(page, action: Callable[[], object], holds: Callable[[], bool], *,
              tries: int = 3, rerun: bool = True, what: str = "") -> None:
    """Do ``action`` until ``holds()`` is true on a settled page: a rerun that was under way,
    or started late, may draw the widget anew and drop what the action did; then the action is
    done again (at most ``tries`` times). Checks ``holds()`` first: a value that already holds
    needs no action. ``holds`` reads the page (a locator's value, text or checked state)."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(tries):
        settle(page)
        if holds():
            return
        if attempt:           # shown with a failure's output: how often a rerun dropped it
            print(f"act_until({what}): did not hold; try {attempt + 1}")
        asked = _reruns_asked(page)
        try:
            action()
            if rerun:         # no rerun asked for in this long: the action was dropped
                page.wait_for_function(
                    f"() => window.__studio && window.__studio.sends > {asked}",
                    timeout=RERUN_ASKED_MS)
        except PlaywrightError as err:     # dropped, or its element replaced under it
            print(f"act_until({what}): {err.message.splitlines()[0]}")
        settle(page)
    if not holds():
        from tests.e2e.conftest import screenshot
        screenshot(page, f"act-until-failed-{what or 'action'}".replace(" ", "-")[:80])
        raise AssertionError(f"{what or 'the action'} did not hold after {tries} tries")


def read_page(page, expression: str):
    """Evaluate the JavaScript ``expression`` (a function of no argument) on a settled page,
    as one look at the page: every value it returns comes from the same redraw. Settles and
    looks again when a rerun began in between."""
    while True:
        settle(page)
        value = page.evaluate(f"() => ({SETTLED_JS}) ? {{value: ({expression})()}} : null")
        if value is not None:
            return value["value"]


def click(page, target) -> None:
    """Click a button (a locator) that reruns the app, once, on a settled page; returns
    settled. Wait for the click's outcome (its message) afterwards."""
    act(page, target.click)


def pick_tab(page, name: str, *, rerun: bool = True) -> None:
    """Open the tab ``name``; ``rerun``: the tabs rerun the page (st.tabs(on_change="rerun"))."""
    tab = page.get_by_role("tab", name=name)
    act_until(page, tab.click, lambda: tab.get_attribute("aria-selected") == "true",
              rerun=rerun, what=f"tab {name}")


def set_expander(page, title: str, expanded: bool) -> None:
    """Open (``expanded``) or fold the expander ``title`` (st.expander, no rerun) until it is
    so. A click toggles it with an animation: its state is read once the animation ended, so a
    second click never undoes the first."""
    summary = page.locator("summary", has_text=title).first
    state = ("(s) => { const d = s.closest('details'); return d.getAnimations({subtree: true})"
             ".length === 0 ? d.open : null; }")

    def toggle() -> None:
        summary.click()
        page.wait_for_function(f"(s) => ({state})(s) !== null", arg=summary.element_handle())

    act_until(page, toggle, lambda: summary.evaluate(state) is expanded, rerun=False,
              what=f"{'open' if expanded else 'fold'} {title}")


def choose(page, box, option: str, *, search: bool = False) -> None:
    """Pick ``option`` in the selectbox ``box`` (a combobox locator) until it holds;
    ``search``: type the option's name first (a long list shows only some options)."""
    def pick() -> None:
        box.click()
        if search:
            page.keyboard.type(option)
        try:     # a rerun that closed the list: close it too, try again
            page.get_by_role("option", name=option, exact=True).click(timeout=20_000)
        except Exception:
            page.keyboard.press("Escape")
            raise

    act_until(page, pick, lambda: box.input_value() == option, what=f"choose {option}")


def type_value(page, field, value: str) -> None:
    """Type ``value`` into ``field`` (a text or number input locator) and press Enter, until
    the field holds it on a settled page (a late rerun may draw the field anew, empty)."""
    def type_it() -> None:
        field.fill(value)
        field.press("Enter")

    act_until(page, type_it, lambda: field.input_value() == value, what=f"type {value}")


# Every labelled widget's value in one look: selectboxes, number and text inputs (what the
# field shows), radios (the chosen option's words).
WIDGET_VALUES_JS = """() => { const out = {};
  const label = (e) => (e.querySelector("[data-testid='stWidgetLabel']")?.textContent || '').trim();
  for (const e of document.querySelectorAll("[data-testid='stSelectbox'], "
      + "[data-testid='stNumberInput'], [data-testid='stTextInput']")) {
    const input = e.querySelector('input'); if (label(e) && input) out[label(e)] = input.value; }
  for (const e of document.querySelectorAll("[data-testid='stRadio']")) {
    const checked = e.querySelector('input:checked');
    if (label(e)) out[label(e)] = checked ? checked.closest('label').textContent.trim() : null; }
  return out; }"""


def widget_values(page) -> dict[str, str | None]:
    """{label: value} of the page's widgets, read in one look on a settled page."""
    return read_page(page, WIDGET_VALUES_JS)
