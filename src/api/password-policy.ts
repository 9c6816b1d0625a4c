import { CofferError } from '../common/index.js';

// The least a password someone chooses must be: identity users' passwords, and the database
// user and root passwords given through the Trove API. A length and a number of character
// classes by default, plus Keystone's `password_regex` with its `password_regex_description`.
// Passwords Coffer generates are long random strings and are not checked here (a test checks
// them against the default policy). A refusal states the policy and never quotes the password.

export interface PasswordPolicy {
  /** in characters (code points); 0: any length */
  minLength: number;
  /** of lower-case letters, upper-case letters, digits, anything else; 0: any */
  minClasses: number;
  /** must also match (Unicode mode), as Keystone's password_regex */
  regex?: string | undefined;
  /** what the regex asks for, in words; without it the message quotes the regex */
  regexDescription?: string | undefined;
}

export const defaultPasswordPolicy: PasswordPolicy = Object.freeze({ minLength: 10, minClasses: 2 });
export const noPasswordPolicy: PasswordPolicy = Object.freeze({ minLength: 0, minClasses: 0 });

const classes: RegExp[] = [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u];

/** The policy in words, e.g. for a CLI that was refused a password. */
export function describePasswordPolicy(policy: PasswordPolicy): string {
  const clauses: string[] = [];
  if (policy.minLength > 0) clauses.push(`be at least ${policy.minLength} characters long`);
  if (policy.minClasses > 0) {
    clauses.push(`use at least ${policy.minClasses} of: lower-case letters, upper-case letters, digits, other characters`);
  }
  if (policy.regex !== undefined && policy.regexDescription === undefined) clauses.push(`match the regular expression ${policy.regex}`);
  const sentences = clauses.length === 0 ? [] : [`Passwords must ${clauses.join(' and ')}.`];
  if (policy.regex !== undefined && policy.regexDescription !== undefined) sentences.push(policy.regexDescription);
  return sentences.length === 0 ? 'Any password is accepted.' : sentences.join(' ');
}

export function meetsPasswordPolicy(password: string, policy: PasswordPolicy): boolean {
  if ([...password].length < policy.minLength) return false;
  if (classes.filter((c) => c.test(password)).length < policy.minClasses) return false;
  return policy.regex === undefined || new RegExp(policy.regex, 'u').test(password);
}

/**
 * Throws a 400 whose message says what the policy asks; `whose` names the password in the
 * message, e.g. "user 'app'". Keystone's wording for the same refusal.
 */
export function checkPasswordPolicy(password: string, policy: PasswordPolicy, whose: string): string {
  if (!meetsPasswordPolicy(password, policy)) {
    throw new CofferError(
      'BadRequest',
      `Password validation error: the password of ${whose} does not meet the requirements: ${describePasswordPolicy(policy)}`,
    );
  }
  return password;
}
