// Shared by the packaged-install checks: a real 4×3 PNG, assertions, and the simulator's environment.
export const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
  "base64",
)
export const check = (condition, message) => {
  if (!condition) {
    console.error(`FAILED: ${message}`)
    process.exit(1)
  }
}
export const envFor = (url) => ({ GEMINI_BASE_URL: url, GEMINI_API_KEY: "packaged-test-key-1234" })
