// Who is signed in (the API client and `GET /v1/auth/me`), shared by every
// component through context.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api, Me } from "../api";

export interface Session {
  api: Api;
  me: Me;
  /** `?tv=1`: a wall screen (no navigation, large type). */
  tv: boolean;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

/** The session; only pages and components under the signed-in app call it. */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in console");
  return s;
}
