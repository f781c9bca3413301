// The annotation page's painting input: tool, brush size, fill tolerance and class choice (the
// class list, with colours and a form to add one), pointer painting (lib/paint.js), the edits
// of whole slices (undo, redo, clear, accept the suggestion) and the keyboard shortcuts.
import { classColor, PALETTE } from "../../lib/colors.js";
import { $, el, guarded } from "../../lib/dom.js";
import { enums } from "../../lib/enums.js";
import { PaintInput } from "../../lib/paint.js";

/** Labels opacity once a suggestion fills the slice: its outlines stay visible, and the scan under them. */
const ACCEPTED_LABEL_OPACITY = 0.35;

export class AnnotationTools {
  /**
   * @param state the page's AnnotationState
   * @param view the page's AnnotationView
   * @param actions what the keyboard asks of the rest of the page: save(), openSlice(index or
   *        null for the next suggested one, on the plane shown), openPlane(axis) (a slice
   *        across another axis), saveClasses(classes) (stores them, then sets them)
   */
  constructor(state, view, { save, openSlice, openPlane, saveClasses }) {
    Object.assign(this, { state, view, save, openSlice, openPlane, saveClasses });
    const edited = () => { if (state.labels) state.labelsEdited(state.labels.takeDirty()); };
    this.input = new PaintInput(view.slice, $("view"), $("stage"), state, {
      onStroke: (rect) => state.labelsChanged(rect),
      onEdit: edited,
      onHover: (p) => view.showCursor(p),
    });
    this.edited = edited;
    this.classNameMax = 100; // until the server's limit (GET /api/enums) arrives
    enums().then((e) => {
      this.classNameMax = e.class_name_max;
      $("new-class-name").maxLength = e.class_name_max;
    }).catch(() => {});

    for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => state.setTool(b.dataset.tool));
    $("brush-size").addEventListener("input", (e) => state.setSize(Number(e.target.value)));
    $("fill-tol").addEventListener("input", (e) => state.setTolerance(Number(e.target.value)));
    $("add-class").addEventListener("submit", (e) => { e.preventDefault(); guarded(() => this.addClass()); });
    $("undo").addEventListener("click", () => this.undo());
    $("redo").addEventListener("click", () => this.redo());
    $("clear").addEventListener("click", () => this.clear());
    $("accept-pred").addEventListener("click", () => this.acceptSuggestion());
    document.addEventListener("keydown", (e) => this._keydown(e));
    document.addEventListener("keyup", (e) => {
      if (e.key === " ") { this.input.spaceHeld = false; $("stage").classList.toggle("panning", state.tool === "pan"); }
    });

    state.on("tool", () => this._showTool());
    state.on("size", () => {
      $("brush-size").value = state.size;
      $("brush-size-out").textContent = state.size;
      view.slice.redraw();
    });
    state.on("tolerance", () => { $("fill-tol-out").textContent = state.tolerance ? `± ${state.tolerance}` : "off"; });
    state.on("classes", () => this._renderClasses());
    state.on("active", () => this._renderClasses());
    state.on("slice", () => this.input.cancelPolygon());
  }

  /** Paint with class `value` from now on (the eraser gives way to the brush). */
  chooseClass(value) {
    this.state.setActive(value);
    if (this.state.tool === "eraser") this.state.setTool("brush");
  }

  _showTool() {
    const { tool } = this.state;
    this.input.cancelPolygon();
    for (const b of document.querySelectorAll(".tool")) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    $("stage").classList.toggle("panning", tool === "pan");
    this.view.slice.redraw();
  }

  _renderClasses() {
    const { state } = this;
    const items = state.classes.map((c, i) => {
      const color = el("input", { type: "color", value: classColor(c), "aria-label": `Colour of ${c.name}` });
      color.addEventListener("change", () => guarded(() =>
        this.saveClasses(state.classes.map((k) => (k === c ? { ...k, color: color.value } : k)))));
      const name = el("span", { class: "name", title: "Double-click to rename" }, c.name);
      const rename = el("button", { type: "button", class: "rename", "aria-label": `Rename ${c.name}`, title: "Rename (the painted values stay)" }, "✎");
      const li = el("li", { class: c.value === state.active ? "active" : "", dataset: { value: c.value }, title: `value ${c.value}` },
        color, name, rename, el("span", { class: "key" }, i < 9 ? String(i + 1) : ""));
      li.addEventListener("click", (e) => { if (e.target !== color && !li.querySelector("input.rename-input")) this.chooseClass(c.value); });
      name.addEventListener("dblclick", () => this._rename(c, name));
      rename.addEventListener("click", (e) => { e.stopPropagation(); this._rename(c, name); });
      return li;
    });
    $("classes").replaceChildren(...items);
    // offer a colour no class uses yet for the next one
    const used = new Set(state.classes.map((c) => classColor(c).toLowerCase()));
    const free = PALETTE.slice(2).find((c) => !used.has(c)) || `#${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0")}`;
    $("new-class-color").value = free;
  }

  /** Rename class `c` in place of its `nameSpan`: Enter or leaving the field saves, Escape drops
   * it. Only the name changes: the value painted in the masks stays, so nothing is repainted. */
  _rename(c, nameSpan) {
    const input = el("input", { type: "text", class: "rename-input", value: c.name, maxlength: String(this.classNameMax), size: "10",
      "aria-label": `New name of ${c.name}` });
    let done = false;
    const finish = (keep) => {
      if (done) return;
      done = true;
      const name = input.value.trim();
      if (!keep || !name || name === c.name) { this._renderClasses(); return; }
      guarded(async () => {
        if (this.state.classes.some((k) => k !== c && k.name === name)) throw new Error(`There is already a class named “${name}”.`);
        await this.saveClasses(this.state.classes.map((k) => (k === c ? { ...k, name } : k)));
        this.state.say(`Class ${c.value} is now called “${name}”.`);
      }).finally(() => this._renderClasses());
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); } else if (e.key === "Escape") finish(false);
      e.stopPropagation();
    });
    input.addEventListener("blur", () => finish(true));
    input.addEventListener("click", (e) => e.stopPropagation());
    nameSpan.replaceWith(input);
    input.focus();
    input.select();
  }

  async addClass() {
    const { state } = this;
    const name = $("new-class-name").value.trim();
    if (!name) throw new Error("Give the new class a name.");
    if (state.classes.some((c) => c.name === name)) throw new Error(`There is already a class named “${name}”.`);
    const value = Math.max(1, ...state.classes.map((c) => c.value)) + 1;
    if (value > 255) throw new Error("At most 254 classes.");
    await this.saveClasses([...state.classes, { value, name, color: $("new-class-color").value }]);
    this.chooseClass(value);
    $("new-class-name").value = "";
  }

  // ---------------------------------------------------------------- edits of the whole slice
  undo() {
    const { labels } = this.state;
    if (labels && labels.undo()) this.edited();
  }

  redo() {
    const { labels } = this.state;
    if (labels && labels.redo()) this.edited();
  }

  clear() {
    const { labels } = this.state;
    if (!labels) return;
    labels.begin();
    labels.clear();
    if (labels.end()) this.edited();
  }

  /** Fill every unpainted pixel with the suggestion (painted pixels stay as painted). */
  acceptSuggestion() {
    const { labels, suggestion } = this.state;
    if (!labels || !suggestion) return;
    const { values, offset } = suggestion, painted = labels.values;
    labels.begin();
    labels.assign((i) => painted[i] === 0 && values[i] + offset !== 0, (i) => values[i] + offset);
    if (labels.end()) this.edited();
    this.view.dimLabels(ACCEPTED_LABEL_OPACITY);
  }

  // ---------------------------------------------------------------- keyboard
  _keydown(e) {
    const { state, input } = this;
    const t = e.target;
    if (t instanceof HTMLInputElement && ["text", "number", "color"].includes(t.type)) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (ctrl && key === "z" && !e.shiftKey) { e.preventDefault(); this.undo(); return; }
    if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); this.redo(); return; }
    if (ctrl && key === "s") { e.preventDefault(); guarded(this.save); return; }
    if (ctrl || e.altKey) return;
    if (e.key === " ") { input.spaceHeld = true; $("stage").classList.add("panning"); e.preventDefault(); return; }
    const tools = { b: "brush", e: "eraser", l: "lasso", f: "fill" };
    if (tools[key]) state.setTool(tools[key]);
    else if (/^[1-9]$/.test(key) && state.classes[Number(key) - 1]) this.chooseClass(state.classes[Number(key) - 1].value);
    else if (key === "[") state.setSize(state.size - (state.size > 10 ? 2 : 1));
    else if (key === "]") state.setSize(state.size + (state.size >= 10 ? 2 : 1));
    else if (key === "n") guarded(() => this.openSlice(null));
    else if (key === "c") $("complete").click();
    else if (["z", "y", "x"].includes(key) && key !== state.axis) guarded(() => this.openPlane(key));
    else if (key === "p") { $("show-pred").click(); }
    else if (key === "u") { $("show-doubt").click(); }
    else if (key === "," && state.index > 0) guarded(() => this.openSlice(state.index - 1));
    else if (key === "." && state.index < state.depth - 1) guarded(() => this.openSlice(state.index + 1));
    else if (e.key === "Escape") input.cancelPolygon();
    else if (e.key === "Enter" && input.drawingPolygon) input.closePolygon();
  }
}
