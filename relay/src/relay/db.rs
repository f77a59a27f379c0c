//! A small pool of database connections for the relay's short reads
//! (authentication, snapshots, replays): a local file's connection must not
//! be shared by two tasks at once (their transactions would interleave), and
//! opening one per request costs a schema parse, or a TLS handshake remotely.

use std::future::Future;
use std::sync::Mutex;

use anyhow::Result;
use tokio::sync::{Semaphore, SemaphorePermit};
use vigil_db::Target;

pub struct Pool {
    target: Target,
    idle: Mutex<Vec<libsql::Connection>>,
    permits: Semaphore,
}

/// A connection on loan; it goes back to the pool when dropped, unless
/// [`Pooled::discard`] says it failed.
pub struct Pooled<'a> {
    conn: Option<libsql::Connection>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub fn new(target: Target, size: usize) -> Pool {
        Pool {
            target,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub async fn get(&self) -> Result<Pooled<'_>> {
        let permit = self.permits.acquire().await?;
        let idle = self.idle.lock().expect("pool lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.target.connect().await?,
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }
}

impl Pool {
    /// Run `read` on a pooled connection. On an error that connection is
    /// dropped and `read` runs once more on a fresh one: a remote
    /// connection's stream can expire while it sits idle in the pool.
    pub async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(libsql::Connection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let conn = self.get().await?;
        match read(conn.conn().clone()).await {
            Ok(v) => Ok(v),
            Err(_) => {
                conn.discard();
                let conn = self.get().await?;
                let out = read(conn.conn().clone()).await;
                if out.is_err() {
                    conn.discard();
                }
                out
            }
        }
    }
}

impl Pooled<'_> {
    pub fn conn(&self) -> &libsql::Connection {
        self.conn.as_ref().expect("present until dropped")
    }

    /// Drop the connection instead of returning it (after an error).
    pub fn discard(mut self) {
        self.conn = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().expect("pool lock").push(conn);
        }
    }
}
