//! [`TrackingStore`] for [`SqliteStore`]: the database stores' one implementation
//! ([`crate::sql::store`]) on this store's transactions.

use super::*;
use crate::sql::store::{Database, impl_tracking_store};

impl Database for SqliteStore {
    type Conn<'t> = SqliteConn<'t>;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn read_tx<T>(
        &self,
        work: impl FnOnce(&mut SqliteConn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.read(|transaction| work(&mut SqliteConn(transaction)))
    }

    fn write_tx<T>(
        &self,
        work: impl FnOnce(&mut SqliteConn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.write(|transaction| work(&mut SqliteConn(transaction)))
    }
}

impl_tracking_store!(SqliteStore, |store| format!("sqlite:///{}", store.display));
