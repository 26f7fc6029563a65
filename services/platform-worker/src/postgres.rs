//! Replacing a task's blocks in the chain tables of Postgres data.
//!
//! One transaction deletes the chain's rows of exactly those blocks, in
//! exactly the tables being ingested, and inserts the new rows; so a re-run
//! of a task, or two attempts racing, leave one copy of each row. Rows go in
//! with one `insert ... select from unnest(...)` per table: one round trip
//! whatever the row count, and no bind-parameter limit to chunk around.
//! Decimal text is cast to `numeric` in SQL.

use sqlx::PgPool;

use crate::rows::{BlockRow, LogRow, TransactionRow};

/// The rows of one task, by table; `None` for a table not being ingested.
#[derive(Debug, Default)]
pub struct TaskRows {
    pub blocks: Option<Vec<BlockRow>>,
    pub transactions: Option<Vec<TransactionRow>>,
    pub logs: Option<Vec<LogRow>>,
}

/// Deletes the chain's rows for `numbers` in each table present in `rows`
/// and inserts `rows`, all in one transaction.
pub async fn replace_blocks(
    pool: &PgPool,
    chain_id: u64,
    numbers: &[u64],
    rows: &TaskRows,
) -> Result<(), sqlx::Error> {
    let chain = i64::try_from(chain_id).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let numbers: Vec<i64> = numbers.iter().map(|&n| n as i64).collect();
    let mut tx = pool.begin().await?;

    if let Some(blocks) = &rows.blocks {
        let sql = "delete from chain.blocks where chain_id = $1 and number = any($2)";
        sqlx::query(sql)
            .bind(chain)
            .bind(&numbers)
            .execute(&mut *tx)
            .await?;
        insert_blocks(&mut tx, chain, blocks).await?;
    }
    if let Some(txs) = &rows.transactions {
        let sql = "delete from chain.transactions where chain_id = $1 and block_number = any($2)";
        sqlx::query(sql)
            .bind(chain)
            .bind(&numbers)
            .execute(&mut *tx)
            .await?;
        insert_transactions(&mut tx, chain, txs).await?;
    }
    if let Some(logs) = &rows.logs {
        let sql = "delete from chain.logs where chain_id = $1 and block_number = any($2)";
        sqlx::query(sql)
            .bind(chain)
            .bind(&numbers)
            .execute(&mut *tx)
            .await?;
        insert_logs(&mut tx, chain, logs).await?;
    }

    tx.commit().await
}

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

async fn insert_blocks(tx: &mut Tx, chain: i64, rows: &[BlockRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&BlockRow) -> &String| rows.iter().map(f).collect::<Vec<_>>();
    let int8 = |f: fn(&BlockRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into chain.blocks (chain_id, number, hash, parent_hash, timestamp, miner,
             gas_used, gas_limit, base_fee_per_gas, transaction_count)
         select $1, n, h, p, t, m, gu, gl, bf::numeric, tc
         from unnest($2::int8[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
                     $7::int8[], $8::int8[], $9::text[], $10::int4[])
              as r(n, h, p, t, m, gu, gl, bf, tc)",
    )
    .bind(chain)
    .bind(int8(|r| r.number))
    .bind(text(|r| &r.hash))
    .bind(text(|r| &r.parent_hash))
    .bind(rows.iter().map(|r| r.timestamp).collect::<Vec<_>>())
    .bind(text(|r| &r.miner))
    .bind(int8(|r| r.gas_used))
    .bind(int8(|r| r.gas_limit))
    .bind(rows.iter().map(|r| &r.base_fee_per_gas).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.transaction_count).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_transactions(
    tx: &mut Tx,
    chain: i64,
    rows: &[TransactionRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&TransactionRow) -> &String| rows.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&TransactionRow) -> &Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let int8 = |f: fn(&TransactionRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let int4 = |f: fn(&TransactionRow) -> i32| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into chain.transactions (chain_id, block_number, transaction_index, hash,
             from_address, to_address, value, gas, gas_price, nonce, input, type)
         select $1, b, i, h, f, t, v::numeric, g, gp::numeric, n, inp, ty
         from unnest($2::int8[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::int8[], $9::text[], $10::int8[], $11::text[], $12::int4[])
              as r(b, i, h, f, t, v, g, gp, n, inp, ty)",
    )
    .bind(chain)
    .bind(int8(|r| r.block_number))
    .bind(int4(|r| r.transaction_index))
    .bind(text(|r| &r.hash))
    .bind(text(|r| &r.from_address))
    .bind(opt(|r| &r.to_address))
    .bind(text(|r| &r.value))
    .bind(int8(|r| r.gas))
    .bind(opt(|r| &r.gas_price))
    .bind(int8(|r| r.nonce))
    .bind(text(|r| &r.input))
    .bind(int4(|r| r.tx_type))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_logs(tx: &mut Tx, chain: i64, rows: &[LogRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&LogRow) -> &String| rows.iter().map(f).collect::<Vec<_>>();
    let topic = |i: usize| rows.iter().map(|r| &r.topics[i]).collect::<Vec<_>>();
    let int4 = |f: fn(&LogRow) -> i32| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into chain.logs (chain_id, block_number, block_hash, transaction_hash,
             transaction_index, log_index, address, topic0, topic1, topic2, topic3, data)
         select $1, b, bh, th, ti, li, a, t0, t1, t2, t3, d
         from unnest($2::int8[], $3::text[], $4::text[], $5::int4[], $6::int4[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
              as r(b, bh, th, ti, li, a, t0, t1, t2, t3, d)",
    )
    .bind(chain)
    .bind(rows.iter().map(|r| r.block_number).collect::<Vec<_>>())
    .bind(text(|r| &r.block_hash))
    .bind(text(|r| &r.transaction_hash))
    .bind(int4(|r| r.transaction_index))
    .bind(int4(|r| r.log_index))
    .bind(text(|r| &r.address))
    .bind(topic(0))
    .bind(topic(1))
    .bind(topic(2))
    .bind(topic(3))
    .bind(text(|r| &r.data))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
