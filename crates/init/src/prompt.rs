//! Questions answered line by line from a reader, so answers may be typed or piped, and tests
//! can script them. Prompts are printed verbatim, each ending in one space.

use std::io::{BufRead, Write};

use crate::InitError;

/// Asks questions on `output` and reads answers from `input`.
pub struct Asker<R, W> {
    input: R,
    output: W,
    terminal: bool,
}

impl<R: BufRead, W: Write> Asker<R, W> {
    /// An asker; `terminal` turns echo off for passwords.
    pub fn new(input: R, output: W, terminal: bool) -> Self {
        Asker {
            input,
            output,
            terminal,
        }
    }

    /// Where questions go, for the lines printed between them.
    pub(crate) fn output(&mut self) -> &mut W {
        &mut self.output
    }

    fn line(&mut self) -> Result<String, InitError> {
        let mut s = String::new();
        let n = self.input.read_line(&mut s)?;
        if n == 0 {
            return Err(InitError::Invalid("EOF".into()));
        }
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    }

    /// Prints `prompt` and returns the trimmed answer, or `default` for an empty one.
    pub fn string(&mut self, prompt: &str, default: &str) -> Result<String, InitError> {
        write!(self.output, "{prompt}")?;
        self.output.flush()?;
        let answer = self.line()?.trim().to_string();
        Ok(if answer.is_empty() {
            default.to_string()
        } else {
            answer
        })
    }

    /// Asks until `check` accepts the answer, printing its complaint between tries.
    pub fn checked(
        &mut self,
        prompt: &str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String, InitError> {
        loop {
            let answer = self.string(prompt, default)?;
            match check(&answer) {
                Ok(()) => return Ok(answer),
                Err(e) => {
                    writeln!(self.output, "{e}")?;
                }
            }
        }
    }

    /// Waits for Enter (a line, whatever it holds).
    pub(crate) fn pause(&mut self) -> Result<(), InitError> {
        self.output.flush()?;
        self.line().map(|_| ())
    }

    /// A yes/no question.
    pub fn bool(&mut self, prompt: &str, default: bool) -> Result<bool, InitError> {
        let d = if default { "yes" } else { "no" };
        loop {
            let answer = self.string(prompt, d)?.to_lowercase();
            match answer.as_str() {
                "yes" | "y" => return Ok(true),
                "no" | "n" => return Ok(false),
                _ => writeln!(self.output, "Invalid input, try again.\n")?,
            }
        }
    }

    /// A password, without echo on a terminal.
    pub fn password(&mut self, prompt: &str) -> Result<String, InitError> {
        write!(self.output, "{prompt}")?;
        self.output.flush()?;
        let saved = if self.terminal { echo_off() } else { None };
        let answer = self.line();
        if let Some(s) = saved {
            echo_restore(s);
            writeln!(self.output)?;
        }
        answer
    }

    /// Asks for a new password twice until both agree.
    pub fn new_password(&mut self, prompt: &str) -> Result<String, InitError> {
        loop {
            let first = self.password(prompt)?;
            let second = self.password("Again: ")?;
            if first == second {
                return Ok(first);
            }
            writeln!(self.output, "Passwords don't match, try again.\n")?;
        }
    }
}

fn echo_off() -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok()?;
    let mut t = saved.clone();
    t.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &t).ok()?;
    Some(saved)
}

fn echo_restore(saved: nix::sys::termios::Termios) {
    let _ =
        nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &saved);
}
