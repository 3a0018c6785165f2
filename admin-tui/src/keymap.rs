//! Keys to actions: pure, so the key map is unit-tested without a terminal.

use crate::action::{Action, View};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the keyboard is talking to right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// The lists and drill-downs.
    Normal,
    /// A filter line or a prompt: keys type.
    Text,
    /// A `y`-to-confirm question.
    Confirm,
    /// A list to pick from (migrate target).
    Pick,
    /// The help overlay.
    Help,
}

pub fn action_for(key: KeyEvent, mode: KeyMode) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        return Some(Action::Quit);
    }
    match mode {
        KeyMode::Normal => normal(key, ctrl),
        KeyMode::Text => match key.code {
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc => Some(Action::Cancel),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char('u') if ctrl => Some(Action::ClearInput),
            KeyCode::Char(c) if !ctrl => Some(Action::Input(c)),
            _ => None,
        },
        KeyMode::Confirm => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm),
            _ => Some(Action::Cancel),
        },
        KeyMode::Pick => match key.code {
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        KeyMode::Help => match key.code {
            KeyCode::Esc | KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Char('q') => Some(Action::Quit),
            _ => None,
        },
    }
}

fn normal(key: KeyEvent, ctrl: bool) -> Option<Action> {
    if ctrl {
        return None;
    }
    Some(match key.code {
        KeyCode::Char('1') => Action::Show(View::Cluster),
        KeyCode::Char('2') => Action::Show(View::Rooms),
        KeyCode::Char('3') => Action::Show(View::Clients),
        KeyCode::Char('4') => Action::Show(View::Events),
        KeyCode::Tab => Action::NextView,
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('/') => Action::OpenFilter,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('k') => Action::Kick,
        KeyCode::Char('t') => Action::Throttle,
        KeyCode::Char('T') => Action::Unthrottle,
        KeyCode::Char('d') => Action::Drain,
        KeyCode::Char('u') => Action::Undrain,
        KeyCode::Char('m') => Action::Migrate,
        KeyCode::Char('p') => Action::Publish,
        KeyCode::Char('h') => Action::History,
        KeyCode::Char('j') => Action::JoinRoom,
        KeyCode::Char('l') => Action::LeaveRoom,
        KeyCode::Char(':') => Action::Attach,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }
    fn shift(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT)
    }

    #[test]
    fn view_keys() {
        let n = KeyMode::Normal;
        assert_eq!(
            action_for(key(KeyCode::Char('1')), n),
            Some(Action::Show(View::Cluster))
        );
        assert_eq!(
            action_for(key(KeyCode::Char('2')), n),
            Some(Action::Show(View::Rooms))
        );
        assert_eq!(
            action_for(key(KeyCode::Char('3')), n),
            Some(Action::Show(View::Clients))
        );
        assert_eq!(
            action_for(key(KeyCode::Char('4')), n),
            Some(Action::Show(View::Events))
        );
        assert_eq!(action_for(key(KeyCode::Tab), n), Some(Action::NextView));
    }

    #[test]
    fn navigation_and_actions() {
        let n = KeyMode::Normal;
        assert_eq!(action_for(key(KeyCode::Up), n), Some(Action::Up));
        assert_eq!(action_for(key(KeyCode::Down), n), Some(Action::Down));
        assert_eq!(action_for(key(KeyCode::PageUp), n), Some(Action::PageUp));
        assert_eq!(
            action_for(key(KeyCode::PageDown), n),
            Some(Action::PageDown)
        );
        assert_eq!(action_for(key(KeyCode::Enter), n), Some(Action::Open));
        assert_eq!(action_for(key(KeyCode::Esc), n), Some(Action::Back));
        assert_eq!(
            action_for(key(KeyCode::Char('/')), n),
            Some(Action::OpenFilter)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('s')), n),
            Some(Action::CycleSort)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('?')), n),
            Some(Action::ToggleHelp)
        );
        assert_eq!(action_for(key(KeyCode::Char('q')), n), Some(Action::Quit));
        assert_eq!(action_for(key(KeyCode::Char('k')), n), Some(Action::Kick));
        assert_eq!(
            action_for(key(KeyCode::Char('t')), n),
            Some(Action::Throttle)
        );
        // Terminals report `T` with or without SHIFT.
        assert_eq!(
            action_for(key(KeyCode::Char('T')), n),
            Some(Action::Unthrottle)
        );
        assert_eq!(action_for(shift('T'), n), Some(Action::Unthrottle));
        assert_eq!(action_for(key(KeyCode::Char('d')), n), Some(Action::Drain));
        assert_eq!(
            action_for(key(KeyCode::Char('u')), n),
            Some(Action::Undrain)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('m')), n),
            Some(Action::Migrate)
        );
        assert_eq!(action_for(key(KeyCode::Char(':')), n), Some(Action::Attach));
        assert_eq!(
            action_for(key(KeyCode::Char('p')), n),
            Some(Action::Publish)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('h')), n),
            Some(Action::History)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('j')), n),
            Some(Action::JoinRoom)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('l')), n),
            Some(Action::LeaveRoom)
        );
        assert_eq!(action_for(key(KeyCode::Char('x')), n), None);
    }

    #[test]
    fn ctrl_c_quits_everywhere() {
        for mode in [
            KeyMode::Normal,
            KeyMode::Text,
            KeyMode::Confirm,
            KeyMode::Pick,
            KeyMode::Help,
        ] {
            assert_eq!(action_for(ctrl('c'), mode), Some(Action::Quit));
        }
    }

    #[test]
    fn text_mode_types_instead_of_acting() {
        let t = KeyMode::Text;
        assert_eq!(
            action_for(key(KeyCode::Char('q')), t),
            Some(Action::Input('q'))
        );
        assert_eq!(
            action_for(key(KeyCode::Char('1')), t),
            Some(Action::Input('1'))
        );
        assert_eq!(action_for(ctrl('u'), t), Some(Action::ClearInput));
        assert_eq!(
            action_for(key(KeyCode::Backspace), t),
            Some(Action::Backspace)
        );
        assert_eq!(action_for(key(KeyCode::Enter), t), Some(Action::Submit));
        assert_eq!(action_for(key(KeyCode::Esc), t), Some(Action::Cancel));
    }

    #[test]
    fn confirm_needs_y() {
        let c = KeyMode::Confirm;
        assert_eq!(
            action_for(key(KeyCode::Char('y')), c),
            Some(Action::Confirm)
        );
        assert_eq!(action_for(key(KeyCode::Char('n')), c), Some(Action::Cancel));
        assert_eq!(action_for(key(KeyCode::Enter), c), Some(Action::Cancel));
        assert_eq!(action_for(key(KeyCode::Esc), c), Some(Action::Cancel));
    }

    #[test]
    fn pick_and_help() {
        assert_eq!(
            action_for(key(KeyCode::Down), KeyMode::Pick),
            Some(Action::Down)
        );
        assert_eq!(
            action_for(key(KeyCode::Enter), KeyMode::Pick),
            Some(Action::Submit)
        );
        assert_eq!(
            action_for(key(KeyCode::Esc), KeyMode::Pick),
            Some(Action::Cancel)
        );
        assert_eq!(
            action_for(key(KeyCode::Esc), KeyMode::Help),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            action_for(key(KeyCode::Char('?')), KeyMode::Help),
            Some(Action::ToggleHelp)
        );
        assert_eq!(action_for(key(KeyCode::Char('k')), KeyMode::Help), None);
    }
}
