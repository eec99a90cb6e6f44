/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the API lives when the page is hosted elsewhere, e.g. https://api.example.org */
  readonly VITE_API_BASE?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
