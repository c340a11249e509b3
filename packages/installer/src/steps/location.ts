import { encode, type LocatedRun } from "./context.js";

/** What the `location` step did to `~/.sremote/.location`. */
export type LocationAction = "written" | "removed" | "unchanged" | "none";

/** `location`: writes `~/.sremote/.location` for a non-default layout, removes a stale one. */
export async function ensureLocation(r: LocatedRun): Promise<LocationAction> {
  const { current, locationText: text, writeLocation, layout } = r.plan;
  const step = await r.recorder.run("location", "checking .location", async () => {
    if (!writeLocation) {
      return { changed: false, skipped: true, message: "layout given by the target", action: "none" as const };
    }
    if (text !== null) {
      if (current.text === text) {
        return { changed: false, skipped: true, message: `${current.path} up to date`, action: "unchanged" as const };
      }
      await r.connector.putFile(current.path, encode(text), { ...r.op, mode: 0o600 });
      return { changed: true, message: `wrote ${current.path} → ${layout.endpointDir}`, action: "written" as const };
    }
    if (current.text !== null) {
      await r.connector.deleteFile(current.path, r.op);
      return {
        changed: true,
        message: `removed ${current.path} (it pointed elsewhere; this endpoint is the default)`,
        action: "removed" as const,
      };
    }
    return { changed: false, skipped: true, message: "default layout, no .location needed", action: "none" as const };
  });
  return step.action;
}
