/** `512 MB`, `1.3 GB`: how much a backup stored, as the CLI and instance events say it */
export function storedSizeText(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}
