// The login page: only the language switch (no data is fetched before sign-in).
import { initialLanguage, setLanguage } from "./i18n.js";

const select = document.getElementById("lang");
setLanguage(initialLanguage(navigator.language.startsWith("en") ? "en" : "ja"));
select.value = document.documentElement.lang;
select.addEventListener("change", () => setLanguage(select.value, { remember: true }));
