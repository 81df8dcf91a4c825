"""One Spark session for the whole suite: local, UTC, few shuffle partitions."""

import pytest

from traffic_glue.session import local_spark_session


@pytest.fixture(scope="session")
def spark():
    session = local_spark_session(app_name="traffic-glue-tests", shuffle_partitions=2)
    yield session
    session.stop()
