/** Logins and sessions of the NEWT double (`/auth`, `/login`, `/logout`, the session cookie). */
import { randomBytes } from "node:crypto";
import { COOKIE, type DoubleState, HttpError, json, type Reply, type Session } from "./state.js";

export function liveSession(st: DoubleState, id: string | undefined): Session | undefined {
  if (id === undefined) return undefined;
  const s = st.sessions.get(id);
  if (s && s.expiresAt <= st.clock.now()) {
    st.sessions.delete(id);
    return undefined;
  }
  return s;
}

export function newSession(st: DoubleState, username: string): string {
  const id = randomBytes(16).toString("hex");
  st.sessions.set(id, { username, expiresAt: st.clock.now() + st.lifetimeMs });
  return id;
}

export function authStatus(st: DoubleState, id: string | undefined): Reply {
  const s = liveSession(st, id);
  if (!s || id === undefined) {
    return json(200, { auth: false, username: null, session_lifetime: 0, newt_sessionid: null });
  }
  return json(200, {
    auth: true,
    username: s.username,
    session_lifetime: Math.max(0, Math.floor((s.expiresAt - st.clock.now()) / 1000)),
    newt_sessionid: id,
  });
}

export function login(st: DoubleState, form: Record<string, string>): Reply {
  const user = st.users.find((u) => u.username === form.username);
  const otp = user?.otp === undefined ? "" : typeof user.otp === "function" ? user.otp() : user.otp;
  if (!user || typeof form.password !== "string" || form.password !== user.password + otp) {
    // Production answered 200 with auth:false for bad credentials, never 401.
    return authStatus(st, undefined);
  }
  const id = newSession(st, user.username);
  const reply = authStatus(st, id);
  reply.headers["set-cookie"] = `${COOKIE}=${id}; Path=/; HttpOnly`;
  return reply;
}

export function knownMachine(st: DoubleState, machine: string | undefined): string {
  if (machine === undefined || machine === "" || !st.roots.has(machine)) {
    throw new HttpError(404, `Unrecognized system: ${machine ?? ""}`);
  }
  return machine;
}
