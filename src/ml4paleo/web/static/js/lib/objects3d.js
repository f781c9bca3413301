// 3D view of the objects of an objects run, each in its own colour (the slice's), for picking:
// a click (not a drag) on an object calls `onPick(id)`; `select(id)` lights that object and
// dims the others. The largest MAX_OBJECTS objects are shown (each is one STL request).
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { STLLoader } from "three/addons/loaders/STLLoader.js";

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
    this.renderer = null;
  }

  _init() {
    if (this.renderer) return true;
    try {
      this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    } catch (err) {
      this.message.hidden = false;
      this.message.textContent = `3D view unavailable: this browser has no WebGL (${err.message}).`;
      return false;
    }
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(0x1b1f24);
    const canvas = this.renderer.domElement;
    canvas.setAttribute("aria-label", "3D view of the objects; click one to select it");
    this.container.append(canvas);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.01, 1e7);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444455, 1.6));
    const light = new THREE.DirectionalLight(0xffffff, 1.8);
    light.position.set(1, 1, 2);
    this.camera.add(light);
    this.scene.add(this.camera);
    this.group = new THREE.Group();
    this.scene.add(this.group);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener("change", () => this.render());
    canvas.addEventListener("pointerdown", (e) => { this.down = [e.clientX, e.clientY]; });
    canvas.addEventListener("pointerup", (e) => {
      if (this.down && Math.hypot(e.clientX - this.down[0], e.clientY - this.down[1]) <= CLICK_SLOP_PX) this._pick(e);
      this.down = null;
    });
    new ResizeObserver(() => this._resize()).observe(this.container);
    this._resize();
    return true;
  }

  _resize() {
    const w = this.container.clientWidth, h = this.container.clientHeight;
    if (!w || !h || !this.renderer) return;
    this.renderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
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
    const box = new THREE.Box3().setFromObject(this.group);
    if (box.isEmpty()) return;
    const center = box.getCenter(new THREE.Vector3());
    const radius = box.getSize(new THREE.Vector3()).length() / 2 || 1;
    const dist = radius / Math.sin((this.camera.fov * Math.PI) / 360);
    this.camera.near = dist / 1000;
    this.camera.far = dist * 100;
    // looking along +z with y down (files are x, y, z): the 2D slice's view (x right, y down), tilted a little
    this.camera.position.copy(center).add(new THREE.Vector3(0.1, 0.25, -1).normalize().multiplyScalar(dist));
    this.camera.up.set(0, -1, 0);
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.update();
    this.render();
  }

  _pick(e) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(((e.clientX - rect.left) / rect.width) * 2 - 1, -((e.clientY - rect.top) / rect.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.setFromCamera(ndc, this.camera);
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
    if (!this.renderer || this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.renderer.render(this.scene, this.camera);
    });
  }
}
