// The WebGL stage both 3D views stand on (the viewer's meshes, the Objects page's objects): one
// renderer, a lit scene with a group to fill, an orbiting camera, resizing with its container,
// renders batched to one per frame, and a camera that frames a box. The views keep what differs
// (what they load, how they colour and pick) and share this, so a fix to one is a fix to both.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

export class Stage3D {
  /** A stage in `container` (null when this browser has no WebGL: `error` says why); `label`
   * names the canvas for screen readers; `afterRender` runs after each frame is drawn. */
  static create(container, label, afterRender = () => {}) {
    let renderer;
    try {
      renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    } catch (err) {
      return { stage: null, error: `3D view unavailable: this browser has no WebGL (${err.message}).` };
    }
    return { stage: new Stage3D(container, renderer, label, afterRender), error: null };
  }

  constructor(container, renderer, label, afterRender) {
    this.container = container;
    this.renderer = renderer;
    this.afterRender = afterRender;
    renderer.setPixelRatio(window.devicePixelRatio || 1);
    renderer.setClearColor(0x1b1f24);
    this.canvas = renderer.domElement;
    this.canvas.setAttribute("aria-label", label);
    container.append(this.canvas);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.01, 1e7);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x444455, 1.6));
    const light = new THREE.DirectionalLight(0xffffff, 1.8);
    light.position.set(1, 1, 2);
    this.camera.add(light); // the light follows the camera: the side looked at is lit
    this.scene.add(this.camera);
    this.group = new THREE.Group();
    this.scene.add(this.group);
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.addEventListener("change", () => this.render());
    this._frame = 0;
    new ResizeObserver(() => this._resize()).observe(container);
    this._resize();
  }

  _resize() {
    const w = this.container.clientWidth, h = this.container.clientHeight;
    if (!w || !h) return;
    this.renderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  /** Frame `box` (a THREE.Box3) seen from `direction` with `up` up; an empty box changes nothing. */
  frame(box, direction, up) {
    if (box.isEmpty()) return;
    const center = box.getCenter(new THREE.Vector3());
    const radius = box.getSize(new THREE.Vector3()).length() / 2 || 1;
    const dist = radius / Math.sin((this.camera.fov * Math.PI) / 360);
    this.camera.near = dist / 1000;
    this.camera.far = dist * 100;
    this.camera.position.copy(center).add(direction.clone().normalize().multiplyScalar(dist));
    this.camera.up.copy(up);
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.update();
    this.render();
  }

  /** Draw on the next animation frame; calls in between share that one frame. */
  render() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.draw();
    });
  }

  /** Draw now (a screenshot reads the canvas right after). */
  draw() {
    this.renderer.render(this.scene, this.camera);
    this.afterRender();
  }
}
