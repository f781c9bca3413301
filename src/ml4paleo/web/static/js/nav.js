// Highlights the current page in the job navigation and shows the job's name (as text).
import { api, jobId } from "./api.js";

const page = document.body.dataset.page;
for (const link of document.querySelectorAll(".jobnav a[data-nav]")) {
  if (link.dataset.nav === page) link.classList.add("current");
}
if (jobId) {
  api(`/api/job/${encodeURIComponent(jobId)}/status`)
    .then((job) => {
      const name = document.getElementById("nav-job-name");
      if (name && job) name.textContent = job.name;
      if (job) document.title = `${document.title.split(" · ")[0]} · ${job.name}`;
    })
    .catch(() => {});
}
