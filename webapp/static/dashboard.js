// The one script: copy a new API key to the clipboard.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var text = document.getElementById(button.getAttribute("data-copy")).textContent.trim();
  navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
});
