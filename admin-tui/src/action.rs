//! What a key asks the console to do. Keys become actions in `keymap`, actions change state in
//! `App::update`; network answers arrive separately as `event::NetEvent`.

/// The four top-level views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Cluster,
    Rooms,
    Clients,
    Events,
}

impl View {
    pub const ALL: [View; 4] = [View::Cluster, View::Rooms, View::Clients, View::Events];

    pub fn index(self) -> usize {
        match self {
            View::Cluster => 0,
            View::Rooms => 1,
            View::Clients => 2,
            View::Events => 3,
        }
    }

    pub fn next(self) -> View {
        View::ALL[(self.index() + 1) % View::ALL.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Cluster => "Cluster",
            View::Rooms => "Rooms",
            View::Clients => "Clients",
            View::Events => "Events",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Show(View),
    NextView,
    Up,
    Down,
    PageUp,
    PageDown,
    /// Enter in a list: drill down.
    Open,
    /// Esc: close a prompt, or leave a drill-down.
    Back,
    OpenFilter,
    CycleSort,
    ToggleHelp,
    Quit,
    Kick,
    Throttle,
    Unthrottle,
    Drain,
    Undrain,
    Migrate,
    /// `p`: publish into the selected room as the backend (prompts for the message).
    Publish,
    /// `h`: the selected room's history (or back to its members).
    History,
    /// `j`: make the selected client join a room (prompts for it).
    JoinRoom,
    /// `l`: make the selected client leave a room (prompts for it).
    LeaveRoom,
    /// `:`: attach to another node (prompts for its admin URL).
    Attach,
    // Text entry (filter and prompts).
    Input(char),
    Backspace,
    ClearInput,
    /// Enter in a prompt, filter or picker.
    Submit,
    /// `y` in a confirmation.
    Confirm,
    /// Esc in a prompt (or any other key in a confirmation).
    Cancel,
}
