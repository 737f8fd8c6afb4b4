// The status filter and the players of `cometrunway report`'s page; inlined into it.
"use strict";
const buttons = document.querySelectorAll(".filters button");
for (const button of buttons) {
  button.addEventListener("click", () => {
    const group = button.dataset.filter;
    for (const other of buttons) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    for (const card of document.querySelectorAll(".card")) {
      card.hidden = group !== "all" && card.dataset.group !== group;
    }
  });
}
for (const player of document.querySelectorAll("video, audio")) {
  player.addEventListener("loadedmetadata", () => {
    const played = player.closest(".card").querySelector(".played");
    if (played && Number.isFinite(player.duration)) {
      played.textContent = " · file " + player.duration.toFixed(1) + " s";
    }
  });
  player.addEventListener("error", () => {
    player.closest(".media").classList.add("unplayable");
  });
}
