// The diff the page shows before an apply or a rollback: a unified line diff (jsdiff, the
// `diff` package) of the running config against the text about to run. Both sides are
// redacted here, whatever the caller passes, so a secret never appears in a diff; a change of
// a secret alone is reported as `secretsChanged`, without its value.
import { formatPatch, OMIT_HEADERS, structuredPatch } from 'diff';
import { redactSecrets, restoreSecrets } from '../config/secrets.js';

/** Bounds the work on two unrelated 512 KiB texts (Myers is O(N·D)): past this many changed
 * lines the page is told the texts differ too much to show a diff. */
const MAX_EDIT_LINES = 5000;
const CONTEXT = 3;
const WITHHELD = redactSecrets('a: [').slice(0, 20);

export interface ConfigDiff {
  identical: boolean;
  /** The texts differ only in a secret (its value is never shown). */
  secretsChanged: boolean;
  added: number;
  removed: number;
  /** Unified diff of the redacted texts (hunks only, no file headers); null when too large. */
  unified: string | null;
  tooLarge: boolean;
  /** The new text is not valid YAML. */
  unparsable?: boolean;
}

/** `nextText` may hold the page's placeholders for secrets: they stand for the running ones,
 * as in an apply. */
export function configDiff(runningText: string, sentText: string): ConfigDiff {
  const restored = restoreSecrets(sentText, runningText);
  const nextText = restored.ok ? restored.text : sentText;
  const a = redactSecrets(runningText);
  const b = redactSecrets(nextText);
  // A text YAML cannot parse is withheld whole by redactSecrets: no diff to show (the check
  // names the YAML error).
  if (b.startsWith(WITHHELD)) return { identical: false, secretsChanged: false, added: 0, removed: 0, unified: null, tooLarge: false, unparsable: true };
  const secretsChanged = a === b && !sameSecrets(runningText, nextText, b);
  if (a === b) return { identical: !secretsChanged, secretsChanged, added: 0, removed: 0, unified: '', tooLarge: false };
  const patch = structuredPatch('running', 'new', a, b, undefined, undefined, { context: CONTEXT, maxEditLength: MAX_EDIT_LINES });
  if (!patch) return { identical: false, secretsChanged: false, added: 0, removed: 0, unified: null, tooLarge: true };
  let added = 0;
  let removed = 0;
  for (const hunk of patch.hunks) {
    for (const line of hunk.lines) {
      if (line.startsWith('+')) added++;
      else if (line.startsWith('-')) removed++;
    }
  }
  return { identical: false, secretsChanged: false, added, removed, unified: formatPatch(patch, OMIT_HEADERS), tooLarge: false };
}

/** Whether `next` holds the same secret values as `running`: `next`'s redacted layout filled
 * once with `running`'s secrets and once with its own, compared (both written the same way,
 * so quoting in the source does not count as a change). */
function sameSecrets(running: string, next: string, redactedNext: string): boolean {
  const theirs = restoreSecrets(redactedNext, running);
  const own = restoreSecrets(redactedNext, next);
  return theirs.ok && own.ok && theirs.text === own.text;
}
