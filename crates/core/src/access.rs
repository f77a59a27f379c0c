//! Roles, permissions and the table that joins them.
//!
//! Roles are ordered (`viewer < analyst < supervisor < admin`) and each role
//! holds every permission of the roles below it plus its own. API keys have no
//! role: they act only through the scopes they were issued with.

use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Analyst,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Calls `$callback!(ThreatsRead, ThreatsWrite, …)` with every permission, so
/// code that must mirror the list (the WIT conversions) is generated from it.
#[macro_export]
macro_rules! for_each_permission {
    ($callback:ident $(, $arg:tt)*) => {
        $callback! {
            $($arg)* ;
            ThreatsRead,
            ThreatsWrite,
            ThreatsDelete,
            AlertsRead,
            AlertsManage,
            SensorsRead,
            SensorsManage,
            SensorsIngest,
            PlaybooksRead,
            PlaybooksManage,
            DecisionsRead,
            DecisionsSubmit,
            DecisionsDecide,
            DecisionsSecondApprove,
            DecisionsEscalateOverdue,
            DecisionsReportOutcome,
            MetricsRead,
            MetricsScrape,
            ExportCreate,
            AuditRead,
            AuditExport,
            UsersManage,
            ApiKeysManage,
            SystemRead,
        }
    };
}

macro_rules! define_permission {
    (; $($name:ident),* $(,)?) => {
        /// Everything an endpoint can demand. Mirrors `permission` in `wit/platform.wit`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Permission {
            $($name),*
        }

        impl Permission {
            pub const ALL: &[Permission] = &[$(Permission::$name),*];
        }
    };
}
for_each_permission!(define_permission);

impl Permission {
    /// The least role that holds this permission; `None` for permissions only
    /// API keys can hold (reported by machines, never clicked by people).
    ///
    /// This match is the permission table: every endpoint's check ends here.
    pub fn minimum_role(self) -> Option<Role> {
        use Permission::*;
        match self {
            ThreatsRead | AlertsRead | SensorsRead | PlaybooksRead | DecisionsRead
            | MetricsRead | SystemRead => Some(Role::Viewer),
            ThreatsWrite | AlertsManage | SensorsIngest | DecisionsSubmit | DecisionsDecide
            | ExportCreate => Some(Role::Analyst),
            SensorsManage
            | PlaybooksManage
            | DecisionsSecondApprove
            | DecisionsEscalateOverdue
            | AuditRead => Some(Role::Supervisor),
            ThreatsDelete | UsersManage | ApiKeysManage | AuditExport => Some(Role::Admin),
            // Scrapers (Prometheus) and executors are machines with API keys.
            DecisionsReportOutcome | MetricsScrape => None,
        }
    }

    /// The wire name, as in tokens, API-key scopes and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            ThreatsRead => "threats:read",
            ThreatsWrite => "threats:write",
            ThreatsDelete => "threats:delete",
            AlertsRead => "alerts:read",
            AlertsManage => "alerts:manage",
            SensorsRead => "sensors:read",
            SensorsManage => "sensors:manage",
            SensorsIngest => "sensors:ingest",
            PlaybooksRead => "playbooks:read",
            PlaybooksManage => "playbooks:manage",
            DecisionsRead => "decisions:read",
            DecisionsSubmit => "decisions:submit",
            DecisionsDecide => "decisions:decide",
            DecisionsSecondApprove => "decisions:second_approve",
            DecisionsEscalateOverdue => "decisions:escalate_overdue",
            DecisionsReportOutcome => "decisions:report_outcome",
            MetricsRead => "metrics:read",
            MetricsScrape => "metrics:scrape",
            ExportCreate => "export:create",
            AuditRead => "audit:read",
            AuditExport => "audit:export",
            UsersManage => "users:manage",
            ApiKeysManage => "api_keys:manage",
            SystemRead => "system:read",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.as_str() == s)
    }
}

impl Role {
    pub fn permissions(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| p.minimum_role().is_some_and(|min| self >= min))
    }
}

/// Who is making a request, as established by `platform`'s `authenticate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// A user id, or `key:<id>` for an API key.
    pub subject: String,
    pub role: Option<Role>,
    /// Permissions granted to an API key; empty for users, who act by role.
    pub scopes: Vec<Permission>,
    /// The access token's `jti`.
    pub token_id: String,
    /// The session a user's token belongs to; `None` for API keys.
    pub session: Option<String>,
    /// A step the user owes (2FA enrolment, a new password); until it is
    /// done, no permission is theirs and only the routes for it are open.
    pub pending: Option<Pending>,
}

/// What a user must do before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pending {
    /// Their role requires 2FA and they have not enrolled.
    MfaEnrolment,
    /// An admin reset their password: they must choose a new one.
    PasswordChange,
}

impl Pending {
    pub const ALL: [Pending; 2] = [Pending::MfaEnrolment, Pending::PasswordChange];
}

impl Principal {
    /// The single authorization rule: a user by role (unless they still owe
    /// a step, see [`Pending`]), an API key by scope.
    pub fn may(&self, needed: Permission) -> bool {
        if self.pending.is_some() {
            return false;
        }
        match self.role {
            Some(role) => needed.minimum_role().is_some_and(|min| role >= min),
            None => self.scopes.contains(&needed),
        }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __permission_conversions {
    ($wit:ident ; $($name:ident),* $(,)?) => {
        fn permission_to_wit(p: $crate::Permission) -> $wit::Permission {
            match p { $($crate::Permission::$name => $wit::Permission::$name,)* }
        }
        fn permission_from_wit(p: $wit::Permission) -> $crate::Permission {
            match p { $($wit::Permission::$name => $crate::Permission::$name,)* }
        }
    };
}

/// Conversions between these types and the `vigil:platform/types` bindings
/// that `wit-bindgen` generates (in `platform`, which exports them, and in
/// every API component, which imports them). `$wit` is the path of the
/// generated `types` module. Every match is exhaustive, so a role or
/// permission added on one side only fails to compile.
#[macro_export]
macro_rules! wit_conversions {
    ($($wit:ident)::+) => {
        use $($wit)::+ as wit_types;

        use $crate::__permission_conversions;
        $crate::for_each_permission!(__permission_conversions, wit_types);

        fn role_to_wit(r: $crate::Role) -> wit_types::Role {
            match r {
                $crate::Role::Viewer => wit_types::Role::Viewer,
                $crate::Role::Analyst => wit_types::Role::Analyst,
                $crate::Role::Supervisor => wit_types::Role::Supervisor,
                $crate::Role::Admin => wit_types::Role::Admin,
            }
        }

        fn role_from_wit(r: wit_types::Role) -> $crate::Role {
            match r {
                wit_types::Role::Viewer => $crate::Role::Viewer,
                wit_types::Role::Analyst => $crate::Role::Analyst,
                wit_types::Role::Supervisor => $crate::Role::Supervisor,
                wit_types::Role::Admin => $crate::Role::Admin,
            }
        }

        fn pending_to_wit(p: $crate::access::Pending) -> wit_types::PendingStep {
            match p {
                $crate::access::Pending::MfaEnrolment => wit_types::PendingStep::MfaEnrolment,
                $crate::access::Pending::PasswordChange => wit_types::PendingStep::PasswordChange,
            }
        }

        fn pending_from_wit(p: wit_types::PendingStep) -> $crate::access::Pending {
            match p {
                wit_types::PendingStep::MfaEnrolment => $crate::access::Pending::MfaEnrolment,
                wit_types::PendingStep::PasswordChange => $crate::access::Pending::PasswordChange,
            }
        }

        fn principal_to_wit(p: &$crate::Principal) -> wit_types::Principal {
            wit_types::Principal {
                subject: p.subject.clone(),
                role: p.role.map(role_to_wit),
                scopes: p.scopes.iter().copied().map(permission_to_wit).collect(),
                token_id: p.token_id.clone(),
                session: p.session.clone(),
                pending: p.pending.map(pending_to_wit),
            }
        }

        fn principal_from_wit(p: wit_types::Principal) -> $crate::Principal {
            $crate::Principal {
                subject: p.subject,
                role: p.role.map(role_from_wit),
                scopes: p.scopes.into_iter().map(permission_from_wit).collect(),
                token_id: p.token_id,
                session: p.session,
                pending: p.pending.map(pending_from_wit),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Principal {
        Principal {
            subject: "u1".into(),
            role: Some(role),
            scopes: vec![],
            token_id: "t".into(),
            session: Some("s".into()),
            pending: None,
        }
    }

    #[test]
    fn roles_are_ordered_and_inherit() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Supervisor);
        assert!(Role::Supervisor < Role::Admin);
        for pair in Role::ALL.windows(2) {
            let lower: Vec<_> = pair[0].permissions().collect();
            let higher: Vec<_> = pair[1].permissions().collect();
            assert!(
                lower.iter().all(|p| higher.contains(p)),
                "{:?} ⊄ {:?}",
                pair[0],
                pair[1]
            );
            assert!(higher.len() > lower.len());
        }
    }

    #[test]
    fn table_examples() {
        assert!(user(Role::Viewer).may(Permission::ThreatsRead));
        assert!(!user(Role::Viewer).may(Permission::DecisionsDecide));
        assert!(user(Role::Analyst).may(Permission::DecisionsDecide));
        assert!(!user(Role::Analyst).may(Permission::DecisionsSecondApprove));
        assert!(user(Role::Supervisor).may(Permission::DecisionsSecondApprove));
        assert!(!user(Role::Supervisor).may(Permission::UsersManage));
        assert!(user(Role::Admin).may(Permission::UsersManage));
        // Outcomes are reported by executors (API keys), not clicked by people.
        assert!(!user(Role::Admin).may(Permission::DecisionsReportOutcome));
    }

    #[test]
    fn api_keys_act_only_through_scopes() {
        let key = Principal {
            subject: "key:1".into(),
            role: None,
            scopes: vec![Permission::SensorsIngest],
            token_id: "k".into(),
            session: None,
            pending: None,
        };
        assert!(key.may(Permission::SensorsIngest));
        assert!(!key.may(Permission::ThreatsRead));
    }

    #[test]
    fn wire_names_round_trip() {
        for &p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
