// Highlights the current page in the job navigation and shows the job's name (as text).
import { getJob, jobId } from "../lib/jobs.js";

const page = document.body.dataset.page;
for (const link of document.querySelectorAll(".jobnav a[data-nav]")) {
  if (link.dataset.nav === page) link.classList.add("current");
}
if (jobId) {
  getJob()
    .then((job) => {
      const name = document.getElementById("nav-job-name");
      if (name && job) name.textContent = job.name;
      if (job) document.title = `${document.title.split(" · ")[0]} · ${job.name}`;
    })
    .catch(() => {});
}
