//! [`TrackingStore`](crate::TrackingStore) for [`PostgresStore`]: the database stores' one
//! implementation ([`crate::sql::store`]) on this store's transactions.

use super::*;
use crate::sql::store::{Database, impl_tracking_store};

impl Database for PostgresStore {
    type Conn<'t> = PgConn<'t>;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn read_tx<T>(
        &self,
        work: impl FnOnce(&mut PgConn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.transaction(Access::Read, work)
    }

    fn write_tx<T>(
        &self,
        work: impl FnOnce(&mut PgConn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.transaction(Access::Write, work)
    }
}

impl_tracking_store!(PostgresStore, |store| store.display.clone());
