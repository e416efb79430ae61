/** Text a chat tool shows, made inert: markup escaped, mentions that would ping defused, and clipped without breaking a character. */

/** Slack and Google Chat read `&`, `<`, `>` as markup (`<!channel>`, `<https://x|label>`): escaped as Slack documents. */
export function escapeMarkup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `@everyone`, `@here` (Discord, Mattermost), `@channel`, `@all` (Mattermost) in a reason never ping anyone: a zero-width space follows the @. */
export function defuseMentions(text: string): string {
  return text.replace(/@(?=(everyone|here|channel|all)\b)/gi, '@\u200b');
}

/** Untrusted text (a row id, a path, a provider's reason) as a chat tool should show it: escaped and defused. */
export function chatSafe(text: string): string {
  return defuseMentions(escapeMarkup(text));
}

/** Discord shows `&lt;` as it is (no HTML entities) and reads `[label](url)` as a link under another name: mentions defused, brackets escaped (Discord honours the backslash); `allowed_mentions` does the rest. */
export function discordSafe(text: string): string {
  return defuseMentions(text).replace(/[[\]]/g, '\\$&');
}

/** A code span's text: shown as it is by Slack and Markdown; a backtick would end the span. */
export function codeSpan(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

/**
 * Cut to at most `chars` UTF-16 units, "…" last, never between the halves of a surrogate pair (an emoji) nor inside
 * an entity such as `&amp;` (a chat tool would show the half it got).
 */
export function clipSafe(text: string, chars: number): string {
  if (text.length <= chars) return text;
  let end = chars - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  const amp = text.lastIndexOf('&', end - 1);
  if (amp !== -1 && end - amp <= 8 && !text.slice(amp, end).includes(';') && /^&(#\d+|#x[0-9a-f]+|[a-z]+);/i.test(text.slice(amp, amp + 10))) end = amp;
  return `${text.slice(0, end)}…`;
}
