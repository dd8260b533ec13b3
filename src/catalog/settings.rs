//! Run-time settings stored in the catalog (`/admin/config` writes them).

use rusqlite::{params, Connection, OptionalExtension};

use super::CatalogError;

pub fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>, CatalogError> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn put_setting(conn: &Connection, key: &str, value: &str) -> Result<(), CatalogError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn all_settings(conn: &Connection) -> Result<Vec<(String, String)>, CatalogError> {
    let mut st = conn.prepare_cached("SELECT key, value FROM settings ORDER BY key")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
