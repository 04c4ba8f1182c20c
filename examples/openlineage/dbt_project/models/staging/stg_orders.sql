-- Reads the table `dbt seed` loads from seeds/orders.csv through its source
-- (models/sources.yml): dbt-ol reports a model's `source` and `ref` parents as
-- its inputs, but not seeds.
select
    id as order_id,
    lower(customer) as customer,
    cast(amount as double) as amount
from {{ source('shop', 'orders') }}
