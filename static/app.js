// Fills the service-status table from each component's health endpoint.
"use strict";

async function checkHealth(row) {
  const area = row.dataset.area;
  const cell = (name) => row.querySelector("." + name);
  try {
    const response = await fetch(`/api/${area}/health`, { headers: { accept: "application/json" } });
    const body = await response.json();
    if (response.ok) {
      cell("status").textContent = "up";
      cell("status").className = "status up";
      cell("version").textContent = body.version;
      cell("schema").textContent = body.schema_version;
    } else {
      cell("status").textContent = body.title || `HTTP ${response.status}`;
      cell("status").className = "status down";
    }
  } catch (error) {
    cell("status").textContent = "unreachable";
    cell("status").className = "status down";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#health tbody tr").forEach(checkHealth);
});
