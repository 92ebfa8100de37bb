// The review queue's "select all on this page": ticks every report checkbox of the batch form.
document.addEventListener("change", (event) => {
  if (!event.target.matches(".review-queue .select-all")) return;
  for (const box of document.querySelectorAll('.review-queue input[name="reports"]')) box.checked = event.target.checked;
});
