import type { components } from "./hematovision";

type ClassifyResponse = components["schemas"]["ClassifyResponse"];
type ErrorResponse = components["schemas"]["ErrorResponse"];

export async function classify(baseUrl: string, apiKey: string, photo: Blob): Promise<ClassifyResponse> {
  const form = new FormData();
  form.append("image", photo, "cell.jpg");
  const response = await fetch(`${baseUrl}/v1/classify`, {
    method: "POST",
    headers: { "x-api-key": apiKey },
    body: form,
  });
  if (!response.ok) {
    const { error } = (await response.json()) as ErrorResponse;
    // an unknown code is handled by its status (v1 may add codes)
    throw new Error(`HTTP ${response.status} ${error.code}: ${error.message}`);
  }
  return (await response.json()) as ClassifyResponse;
}
