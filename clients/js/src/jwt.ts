declare function atob(data: string): string;

/**
 * The `exp` claim of a JWT in Unix epoch milliseconds, or `undefined` when the token is not a
 * JWT or has no numeric `exp`. The signature is not checked: this only tells the client when to
 * ask `getToken` for a new one before it connects.
 */
export function tokenExpiresAt(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined || parts[1].length === 0) return undefined;
  try {
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4 !== 0) b64 += "=";
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const claims: unknown = JSON.parse(new TextDecoder("utf-8").decode(bytes));
    if (claims && typeof claims === "object" && typeof (claims as { exp?: unknown }).exp === "number") {
      return (claims as { exp: number }).exp * 1000;
    }
  } catch {
    // Not a JWT the client can read: the node decides.
  }
  return undefined;
}
