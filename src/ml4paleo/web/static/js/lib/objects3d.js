// 3D view of the objects of an objects run, each in its own colour (the slice's), for picking:
// a click (not a drag) on an object calls `onPick(id)`; `select(id)` lights that object and
// dims the others. The largest MAX_OBJECTS objects are shown (each is one STL request).
import * as THREE from "three";
import { STLLoader } from "three/addons/loaders/STLLoader.js";
import { Stage3D } from "./stage3d.js";

export const MAX_OBJECTS = 60;
const CLICK_SLOP_PX = 4; // a pointer that moved more than this between down and up was orbiting

export class ObjectsView {
  constructor(container, message, onPick) {
    this.container = container;
    this.message = message;
    this.onPick = onPick;
    this.key = null;
    this.meshes = new Map(); // id -> THREE.Mesh
    this.selected = 0;
    this.stage = null;
  }

  _init() {
    if (this.stage) return true;
    const { stage, error } = Stage3D.create(this.container, "3D view of the objects; click one to select it");
    if (!stage) {
      this.message.hidden = false;
      this.message.textContent = error;
      return false;
    }
    this.stage = stage;
    this.group = stage.group;
    stage.canvas.addEventListener("pointerdown", (e) => { this.down = [e.clientX, e.clientY]; });
    stage.canvas.addEventListener("pointerup", (e) => {
      if (this.down && Math.hypot(e.clientX - this.down[0], e.clientY - this.down[1]) <= CLICK_SLOP_PX) this._pick(e);
      this.down = null;
    });
    return true;
  }

  /** Show the objects of one run (`key`: a new key reloads), `urlOf(id)` their STL. */
  async load(key, objects, urlOf) {
    if (key === this.key) return;
    this.key = key;
    this._clear();
    if (!this._init()) return;
    const shown = [...objects].sort((a, b) => b.volume - a.volume).slice(0, MAX_OBJECTS);
    this.message.hidden = false;
    this.message.textContent = "Loading the objects in 3D…";
    const loader = new STLLoader();
    for (const o of shown) {
      const response = await fetch(urlOf(o.id));
      if (key !== this.key) return;
      if (!response.ok) continue; // an object too large to mesh in a request: left out of the view
      const geometry = loader.parse(await response.arrayBuffer());
      geometry.computeVertexNormals();
      const material = new THREE.MeshStandardMaterial({ color: o.color || "#d9b38c", roughness: 0.6, metalness: 0.05 });
      const mesh = new THREE.Mesh(geometry, material);
      mesh.userData.id = o.id;
      this.group.add(mesh);
      this.meshes.set(o.id, mesh);
    }
    this.message.hidden = objects.length <= shown.length;
    this.message.textContent = `The ${shown.length} largest of ${objects.length} objects are shown.`;
    this.container.dataset.loaded = String(this.meshes.size);
    this._resetCamera();
    this.select(this.selected);
  }

  _clear() {
    for (const mesh of this.meshes.values()) {
      mesh.geometry.dispose();
      mesh.material.dispose();
      this.group.remove(mesh);
    }
    this.meshes.clear();
    delete this.container.dataset.loaded;
    this.render();
  }

  _resetCamera() {
    // looking along +z with y down (files are x, y, z): the 2D slice's view (x right, y down), tilted a little
    this.stage.frame(new THREE.Box3().setFromObject(this.group), new THREE.Vector3(0.1, 0.25, -1), new THREE.Vector3(0, -1, 0));
  }

  _pick(e) {
    const rect = this.stage.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1, -((e.clientY - rect.top) / rect.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.setFromCamera(ndc, this.stage.camera);
    const hit = ray.intersectObjects([...this.meshes.values()], false)[0];
    if (hit) this.onPick(hit.object.userData.id);
  }

  /** Light object `id` (0: none) and dim the others. */
  select(id) {
    this.selected = id;
    this.container.dataset.selected = String(id);
    for (const [oid, mesh] of this.meshes) {
      const on = !id || oid === id;
      mesh.material.transparent = !on;
      mesh.material.opacity = on ? 1 : 0.25;
      mesh.material.depthWrite = on;
      mesh.material.emissive.setHex(id && oid === id ? 0x333333 : 0x000000);
      mesh.material.needsUpdate = true;
    }
    this.render();
  }

  render() {
    if (this.stage) this.stage.render();
  }
}
