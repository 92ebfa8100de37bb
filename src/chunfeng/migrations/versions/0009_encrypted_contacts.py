"""encrypted contacts: appeal submitter, phone and e-mail under SM4; the phone's keyed SM3 digest

Revision ID: 0009
Revises: 0008
"""
import re

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.alter_column('submitter', type_=sa.Text(), existing_nullable=False)
        batch_op.alter_column('phone', type_=sa.Text(), existing_nullable=False)
        batch_op.alter_column('email', type_=sa.Text(), existing_nullable=False)
        batch_op.add_column(sa.Column('phone_digest', sa.String(length=64), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_appeal_phone_digest'), ['phone_digest'], unique=False)
    # Rows written before: encrypt them in place (values already encrypted are left alone).
    from chunfeng import crypto

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, submitter, phone, email FROM appeal")).fetchall()
    for row_id, submitter, phone, email in rows:
        values = {k: (v if (v or "").startswith(crypto.PREFIX) else crypto.encrypt(v))
                  for k, v in (("submitter", submitter), ("phone", phone), ("email", email))}
        plain = crypto.decrypt(phone) or ""
        values["phone_digest"] = crypto.digest(re.sub(r"\D", "", plain)[-11:]) if plain else ""
        conn.execute(sa.text("UPDATE appeal SET submitter = :submitter, phone = :phone, email = :email, "
                             "phone_digest = :phone_digest WHERE id = :id"), {**values, "id": row_id})


def downgrade() -> None:
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_phone_digest'))
        batch_op.drop_column('phone_digest')
