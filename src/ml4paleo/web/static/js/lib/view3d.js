// 3D view of a segmentation's meshes with three.js: orbit, per-label colour / visibility /
// opacity, a scale bar in physical units, and a PNG screenshot.
import * as THREE from "three";
import { STLLoader } from "three/addons/loaders/STLLoader.js";
import { PLYLoader } from "three/addons/loaders/PLYLoader.js";
import { OBJLoader } from "three/addons/loaders/OBJLoader.js";
import { el } from "./dom.js";
import { enums } from "./enums.js";
import { Stage3D } from "./stage3d.js";

const num = (x) => (typeof x === "number" ? new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 }).format(x) : "–");

/** A round length (1, 2 or 5 × 10^k) close to `x`. */
function niceLength(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  const m = x / p;
  return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
}

export class MeshView {
  constructor(container, message, list, measure) {
    this.container = container;
    this.message = message;
    this.list = list;
    this.measure = measure;
    this.url = null;
    this.meshes = []; // {label, name, object, material}
    this.stage = null;
  }

  _init() {
    if (this.stage) return true;
    const { stage, error } = Stage3D.create(this.container, "3D view of the meshes", () => this._updateScaleBar());
    if (!stage) {
      this.message.textContent = error;
      return false;
    }
    this.stage = stage;
    this.group = stage.group;
    this.scaleBar = el("div", { class: "scalebar" }, el("div", { class: "bar" }), el("div", { class: "label" }));
    this.container.append(this.scaleBar);
    return true;
  }

  /** Show the meshes listed at `url` (GET …/meshes); null clears the view. */
  async load(url, classes) {
    if (url === this.url) return;
    this.url = url;
    this._clear();
    if (!url) {
      this.message.hidden = false;
      this.message.textContent = "No meshes yet: segment the volume, then make meshes from the job page.";
      return;
    }
    const response = await fetch(url);
    if (response.status === 404 || response.status === 409) {
      this.message.hidden = false;
      this.message.textContent = "No meshes for this segmentation yet: make them from the job page.";
      return;
    }
    if (!response.ok) throw new Error(`meshes: ${response.status} ${await response.text()}`);
    const doc = await response.json();
    if (url !== this.url) return;
    const withFiles = (doc.meshes || []).filter((m) => m.files && Object.keys(m.files).length);
    if (!withFiles.length) {
      this.message.hidden = false;
      this.message.textContent = "No meshes for this segmentation yet: make them from the job page.";
      return;
    }
    if (!this._init()) return;
    this.unit = doc.unit ? (await enums()).unit_symbols[doc.unit] || doc.unit : ""; // shown as a symbol
    this.message.hidden = false;
    this.message.textContent = "Loading meshes…";
    const byLabel = new Map((classes || []).map((c) => [c.label, c]));
    for (const m of withFiles) {
      // the light preview (simplified, PLY) when the mesh is large; downloads stay full resolution
      const object = await this._loadGeometry(m.preview ? { ply: m.preview } : m.files);
      if (url !== this.url) return;
      const cls = byLabel.get(m.label);
      const color = (cls && cls.color) || "#d9b38c";
      const material = new THREE.MeshStandardMaterial({ color, roughness: 0.6, metalness: 0.05, side: THREE.DoubleSide, transparent: false, opacity: 1 });
      const mesh = new THREE.Mesh(object, material);
      const background = m.label === 0 || (cls && cls.name === "background");
      mesh.visible = !background || withFiles.length === 1;
      this.group.add(mesh);
      this.meshes.push({ ...m, name: (cls && cls.name) || m.name || `label ${m.label}`, mesh, material });
    }
    this.message.hidden = true;
    this._renderList();
    this.resetCamera();
  }

  async _loadGeometry(files) {
    for (const [fmt, Loader] of [["stl", STLLoader], ["ply", PLYLoader], ["obj", OBJLoader]]) {
      if (!files[fmt]) continue;
      const response = await fetch(files[fmt]);
      if (!response.ok) throw new Error(`mesh ${files[fmt]}: ${response.status}`);
      const loader = new Loader();
      if (fmt === "obj") {
        const group = loader.parse(await response.text());
        const geometries = [];
        group.traverse((o) => { if (o.isMesh) geometries.push(o.geometry); });
        return geometries[0];
      }
      const geometry = loader.parse(await response.arrayBuffer());
      if (!geometry.attributes.normal) geometry.computeVertexNormals();
      return geometry;
    }
    throw new Error(`no mesh format this viewer reads among: ${Object.keys(files).join(", ")}`);
  }

  _renderList() {
    const items = this.meshes.map((m) => {
      const show = el("input", { type: "checkbox", checked: m.mesh.visible, "aria-label": `Show ${m.name}` });
      const color = el("input", { type: "color", value: `#${m.material.color.getHexString()}`, "aria-label": `Colour of ${m.name}` });
      const opacity = el("input", { type: "range", min: "0", max: "100", value: "100", "aria-label": `Opacity of ${m.name}`, title: "opacity" });
      show.addEventListener("change", () => { m.mesh.visible = show.checked; this._renderMeasure(); this.render(); });
      color.addEventListener("input", () => { m.material.color.set(color.value); this.render(); });
      opacity.addEventListener("input", () => {
        const a = opacity.value / 100;
        m.material.opacity = a;
        m.material.transparent = a < 1;
        m.material.depthWrite = a >= 1;
        m.material.needsUpdate = true;
        this.render();
      });
      const meas = m.measurements;
      const unit = this.unit;
      const title = meas ? `volume ${num(meas.volume)} ${unit}³, surface ${num(meas.surface_area)} ${unit}², ${num(meas.triangles)} triangles` : "";
      return el("li", { title }, show, color, el("span", { class: "name" }, m.name), opacity);
    });
    this.list.replaceChildren(...items);
    this._renderMeasure();
  }

  _renderMeasure() {
    const visible = this.meshes.filter((m) => m.measurements && m.mesh.visible);
    const unit = this.unit;
    this.measure.textContent = visible.map((m) => `${m.name}: volume ${num(m.measurements.volume)} ${unit}³, surface ${num(m.measurements.surface_area)} ${unit}²`).join(" · ");
  }

  _clear() {
    for (const m of this.meshes) {
      m.mesh.geometry.dispose();
      m.material.dispose();
      this.group.remove(m.mesh);
    }
    this.meshes = [];
    this.list.replaceChildren();
    this.measure.textContent = "";
    this.render();
  }

  resetCamera() {
    if (!this.stage) return;
    const box = new THREE.Box3();
    for (const m of this.meshes) if (m.mesh.visible) box.expandByObject(m.mesh);
    if (box.isEmpty()) for (const m of this.meshes) box.expandByObject(m.mesh);
    // files are x, y, z with z up: seen from above one corner
    this.stage.frame(box, new THREE.Vector3(0.6, -0.9, 0.7), new THREE.Vector3(0, 0, 1));
  }

  render() {
    if (this.stage) this.stage.render();
  }

  /** A bar about a fifth of the view wide, measured at the orbit target's distance. */
  _updateScaleBar() {
    const h = this.container.clientHeight, w = this.container.clientWidth;
    if (!this.meshes.length || !h) { this.scaleBar.hidden = true; return; }
    const { camera, controls } = this.stage;
    const dist = camera.position.distanceTo(controls.target);
    const visibleHeight = 2 * dist * Math.tan((camera.fov * Math.PI) / 360);
    const perPixel = visibleHeight / h;
    const length = niceLength(perPixel * w * 0.2);
    this.scaleBar.hidden = false;
    this.scaleBar.querySelector(".bar").style.width = `${Math.round(length / perPixel)}px`;
    const unit = this.unit || "units";
    this.scaleBar.querySelector(".label").textContent = `${Number(length.toPrecision(3))} ${unit}`;
  }

  screenshot(filename) {
    if (!this.stage) return;
    this.stage.draw();
    const a = el("a", { href: this.stage.canvas.toDataURL("image/png"), download: filename });
    document.body.append(a);
    a.click();
    a.remove();
  }
}
