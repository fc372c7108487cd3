// Show the service-key fields only for a service key. The server checks everything again.
document.addEventListener("DOMContentLoaded", () => {
  const kinds = document.querySelectorAll('input[name="kind"]');
  const serviceFields = ["service_name", "owner"]
    .map((name) => document.querySelector(`[name="${name}"]`))
    .filter(Boolean)
    .map((el) => el.closest(".field"));
  const update = () => {
    const checked = document.querySelector('input[name="kind"]:checked');
    const isService = checked && checked.value === "service";
    serviceFields.forEach((field) => { field.hidden = !isService; });
  };
  kinds.forEach((el) => el.addEventListener("change", update));
  update();
});
